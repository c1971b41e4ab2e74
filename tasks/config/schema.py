"""The analysis config: one YAML file declares one analysis.

Every model forbids unknown keys, so a typo is an error that names the key rather than a setting
that silently does nothing. Paths stay as written here; ``loading.py`` resolves them against the
config file's folder.
"""

from __future__ import annotations

import ipaddress
import math
import re
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateutil.rrule
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tasks.config.alert_schema import AlertConfig, check_alerts
from tasks.config.source_schema import BLOCK_SLUG, Combine, CredentialRef, SqlSource, is_glob, is_object_store
from tasks.config.memory_schema import HistoryConfig, MemoryConfig
from tasks.config.upkeep_schema import NotifyConfig, RetentionConfig

from .window import WindowLength, parse_window_length

SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
FORMATS = ("csv", "parquet", "json", "xlsx")
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
                  ".json": "json", ".jsonl": "json", ".ndjson": "json", ".xlsx": "xlsx"}
DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_LOCAL_FILE_BYTES = 4 * 1024**3
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$", re.IGNORECASE)


class Strict(BaseModel):
    """Base of every config model: unknown keys are errors; aliases (``schema``) and field names both load."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def parse_size(value: int | str) -> int:
    """'4GiB', '512m', '2g' or a number of bytes -> bytes (k/m/g/t are binary multiples)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"expected a size such as '4GiB', '512MiB' or a number of bytes, got {value!r}")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


def parse_duration(value: float | int | str) -> float:
    """'30m', '1h', '1d', '90s' or a number of seconds -> seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as '90s', '30m', '1h', '1d' or seconds, got {value!r}")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[(match.group(2) or "s").lower()]
    return float(match.group(1)) * seconds


class DatasetConfig(Strict):
    """One dataset: where it is, how to read it, and the pandera schema it must pass."""

    name: str = Field(description=(
        "Names the file in the sandbox: data/<name>.<format>. Lowercase letters, digits, '-' and '_'; "
        "a name, not a path ('/', '\\' and '..' are refused)."))
    path: str | None = Field(None, description=(
        "A local path (relative to the config file), an http(s) URL, or an object storage URL (s3://, gs://, "
        "az://). A glob (*, ?, [...]) over a local folder or a bucket needs 'combine'. A symlink is read and "
        "copied; a device or pipe is refused. Give either 'path' or 'sql'."))
    sql: SqlSource | None = Field(None, description=(
        "Read the dataset from a database instead of a file: {query, connection}. The result is streamed to "
        "a Parquet file (data/<name>.parquet in the sandbox)."))
    combine: Combine | None = Field(None, description=(
        "For a glob: concat reads every matching file as one table (the same columns required; the sandbox "
        "gets data/<name>.parquet); latest reads only the most recently modified file."))
    headers: dict[str, CredentialRef] = Field(default_factory=dict, description=(
        "HTTP headers sent with an http(s) download, each value from a Prefect Secret block "
        "({block: secret/<name>}) or an environment variable ({env: NAME}); never written here."))
    credentials: str | None = Field(None, description=(
        "For object storage: a Prefect block holding the credentials, as 'block-type/block-name' (e.g. "
        "'aws-credentials/prod'). Default: the environment (AWS_*, GOOGLE_*, AZURE_* variables)."))
    format: Literal["csv", "parquet", "json", "xlsx"] | None = Field(None, description=(
        "How to read the file. Default: inferred from the path's suffix (.csv, .tsv, .parquet, .pq, .json, "
        ".jsonl, .ndjson, .xlsx)."))
    read_options: dict[str, Any] = Field(default_factory=dict, description=(
        "Keyword arguments for the reader: polars scan_csv, scan_parquet, read_json/scan_ndjson, or "
        "pandas read_excel for xlsx."))
    schema_: str | dict[str, Any] = Field(alias="schema", description=(
        "The pandera schema, in pandera's own YAML (DataFrameSchema.to_yaml()): a file path (relative to "
        "the config file) or the schema inline. `analyst infer-schema` drafts one."))
    on_invalid: Literal["fail", "warn"] = Field("fail", description=(
        "fail: a dataset that fails validation stops the run; warn: the failures are recorded as a table "
        "and the run goes on."))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if any(part in value for part in ("/", "\\", "..")):
            raise ValueError(f"{value!r} is a path, not a name: the name only names the file data/<name>.<format> "
                             "in the sandbox; put where the file is under 'path'")
        if not DATASET_NAME.match(value):
            raise ValueError("expected lowercase letters, digits, '-' or '_', starting with a letter or digit")
        return value

    @property
    def blocks(self) -> list[str]:
        """The Prefect blocks this dataset's credentials come from (loading them needs a Prefect API)."""
        refs = [*self.headers.values(), *([self.sql.connection] if self.sql else [])]
        return [ref.block for ref in refs if ref.block] + ([self.credentials] if self.credentials else [])

    @property
    def is_url(self) -> bool:
        return self.path is not None and self.path.startswith(("http://", "https://"))

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        if (self.path is None) == (self.sql is None):
            raise ValueError("give exactly one of 'path' (a file, URL or glob) or 'sql' (a query and connection)")
        if self.sql is not None:
            self.format = self.format or "parquet"
            return self
        assert self.path is not None
        if is_glob(self.path) and self.combine is None:
            raise ValueError(f"{self.path!r} is a glob: set 'combine' to concat (every file as one table) or "
                             "latest (the newest file only)")
        if self.headers and not self.is_url:
            raise ValueError("'headers' are sent with an http(s) download only; 'path' is not an http(s) URL")
        if self.credentials is not None and not (is_object_store(self.path) and BLOCK_SLUG.match(self.credentials)):
            raise ValueError("'credentials' names a Prefect block ('block-type/block-name', e.g. "
                             "'aws-credentials/prod') for an s3://, gs:// or az:// path")
        if re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", self.path):
            raise ValueError("'path' holds a password (user:password@): keep credentials in a Prefect block or "
                             "the environment, and use 'headers' or 'credentials'")
        return self

    @property
    def staged_format(self) -> str:
        """The format of the file the sandbox gets: Parquet for a query and for concatenated files."""
        if self.sql is not None or (self.combine == "concat" and self.path is not None and is_glob(self.path)):
            return "parquet"
        return self.format or "csv"

    @model_validator(mode="after")
    def _infer_format(self) -> DatasetConfig:
        if self.format is None and self.path is not None:
            suffix = PurePosixPath(self.path.split("?", 1)[0]).suffix.lower()
            if suffix not in SUFFIX_FORMATS:
                raise ValueError(
                    f"cannot infer the format from {self.path!r}: set 'format' to one of {', '.join(FORMATS)}"
                )
            self.format = SUFFIX_FORMATS[suffix]  # type: ignore[assignment]
        return self

    @property
    def sandbox_filename(self) -> str:
        return f"{self.name}.{self.staged_format}"


_BLOCK_NAME = re.compile(r"^[a-z0-9-]+$")  # what Prefect accepts as a block document's name


def secret_block_name(value: str | None) -> str | None:
    """``api_key_secret`` names a Secret block; the API key itself there would be echoed by every "no
    such block" message, and an override lands in the flow run's parameters. The value is never repeated."""
    if value is not None and value.strip() and (not _BLOCK_NAME.match(value) or value.startswith("sk-ant-")):
        raise ValueError("expected the name of a Prefect Secret block (lowercase letters, digits and dashes), not "
                         "an API key itself (this value is not shown, in case it is one): save the key in a Secret "
                         "block and give the block's name here")
    return value


class ModelPrices(Strict):
    """USD per million tokens, for a model the bundled price list (genai-prices) does not know."""

    input: float = Field(ge=0, description="USD per million input tokens.")
    output: float = Field(ge=0, description="USD per million output tokens.")
    cache_read: float | None = Field(None, ge=0, description="USD per million cache-read tokens; default: input.")
    cache_write: float | None = Field(None, ge=0, description="USD per million cache-write tokens; default: input.")


class ModelConfig(Strict):
    """The model that writes the code, and the limits on what it may spend."""

    provider: Literal["anthropic", "replay"] = Field("anthropic", description=(
        "anthropic: ask Claude; replay: take the model's turns from `transcript` (the code cells still run)."))
    name: str = Field(DEFAULT_MODEL, description=(
        "The Claude model. A deprecated model draws a warning with its end-of-life date."))
    max_tokens: int = Field(16_000, ge=1, le=128_000, description="Most tokens in one model reply.")
    max_iterations: int = Field(10, ge=1, le=200, description=(
        "Model turns that run code before the final report; at the limit Claude writes its report from "
        "what it has."))
    temperature: float | None = Field(None, ge=0, le=1, description=(
        "Refused: the anthropic SDK's messages.stream() and current Claude models take no sampling parameters."))
    base_url: str | None = Field(None, description=(
        "An Anthropic-compatible endpoint (http or https) instead of Anthropic's."))
    timeout: float = Field(600.0, gt=0, description="Seconds for one model request.")
    max_cost_usd: float | None = Field(None, gt=0, description=(
        "Budget in US dollars: the run stops before a turn would pass it (the final report's turn too). "
        "Needs a price for the model: genai-prices' or `prices`. Default: no budget."))
    max_total_tokens: int | None = Field(None, gt=0, description=(
        "Budget in tokens (input and output, all turns): the run stops before a turn would pass it."))
    prices: ModelPrices | None = Field(
        None, description="USD per million tokens (input, output, cache_read, cache_write) to price turns with, "
                          "instead of the bundled price list: for a model it does not know, e.g. behind base_url.")
    api_key_secret: str | None = Field(None, description=(
        "Name of a Prefect Secret block holding the API key. Default: ANTHROPIC_API_KEY from the "
        "environment or .env. The key itself here is refused."))
    transcript: str | None = Field(None, description="For provider 'replay': the transcript.json to replay.")

    @field_validator("api_key_secret")
    @classmethod
    def _block_name(cls, value: str | None) -> str | None:
        return secret_block_name(value)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL")
        return value

    @field_validator("temperature")
    @classmethod
    def _no_sampling(cls, value: float | None) -> float | None:
        # Seen here: anthropic 2.14's messages.stream() takes no `temperature` (TypeError); the API
        # version it speaks no longer accepts sampling parameters. Kept as a key so old configs get
        # this message rather than "unknown key".
        if value is not None:
            raise ValueError("no longer supported: current Claude models and the anthropic SDK take no "
                             "temperature; remove model.temperature")
        return value

    @model_validator(mode="after")
    def _budget_needs_a_price(self) -> ModelConfig:
        # Without a price every turn costs None and max_cost_usd could never stop a run.
        if self.max_cost_usd is None or self.prices is not None or self.provider != "anthropic":
            return self
        # An import cycle: tasks.models imports this module.
        from tasks.models.base import Usage  # noqa: PLC0415
        from tasks.models.pricing import turn_cost  # noqa: PLC0415

        if turn_cost(self.name, Usage(input_tokens=1, output_tokens=1)) is None:
            raise ValueError(f"no price is known for model {self.name!r}, so max_cost_usd cannot be checked: give "
                             "model.prices (USD per million tokens, e.g. {input: 3, output: 15}), or use "
                             "model.max_total_tokens instead of model.max_cost_usd")
        return self

    @model_validator(mode="after")
    def _replay_needs_transcript(self) -> ModelConfig:
        if self.provider == "replay" and not self.transcript:
            raise ValueError("provider 'replay' needs 'transcript': the path of a transcript.json")
        return self


def parse_minutes(value: int | str) -> int:
    """Daytona's lifetime knobs count whole minutes: 15 -> 15; '90s' -> 2, '1h' -> 60 (rounded up)."""
    if isinstance(value, bool):
        raise ValueError("expected minutes or a duration such as '15m', '1h'")
    if isinstance(value, int):
        return value
    if str(value).strip().isdigit():
        return int(str(value).strip())
    return math.ceil(parse_duration(value) / 60)


_DOMAIN = re.compile(r"^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)


class SandboxConfig(Strict):
    """Where the model's code runs: a local Jupyter kernel inside bubblewrap, or a Daytona sandbox."""

    provider: Literal["local", "daytona"] = Field("local", description=(
        "local: a Jupyter kernel inside bubblewrap on this machine; daytona: a Daytona cloud sandbox."))
    timeout: float = Field(120.0, gt=0, description=(
        "Seconds for one code execution; past it the cell is interrupted and reported as a timeout."))
    memory: int | str = Field("4GiB", description=(
        "Memory limit, e.g. '4GiB' (at least 256MiB). Local: RLIMIT_AS plus a memory cgroup where the "
        "machine allows one. Daytona: requested only when building from `image`."))
    cpus: int = Field(1, ge=1, le=64, description=(
        "CPU limit. Local: a CPU cgroup quota (pinned cores where cgroups are not writable). Daytona: "
        "requested only when building from `image`."))
    max_output_chars: int = Field(20_000, ge=200, description=(
        "Characters of stdout/stderr sent back to Claude per code run; the rest is cut inside the sandbox."))
    isolation: Literal["bubblewrap", "none"] = Field("bubblewrap", description=(
        "Local: bubblewrap (no network, no host files, an empty environment), or none: an explicit opt-in "
        "to run the code unisolated, which warns on every run."))
    # -- daytona only (the local provider ignores these) -----------------------------------------
    snapshot: str | None = Field(None, description="Daytona snapshot to start from (default: Daytona's default).")
    image: str | None = Field(None, description="Or a container image to build from (slow: minutes).")
    network: Literal["block", "allow"] | list[str] = Field(
        "block", description="block (default) | allow | a list of CIDR ranges and domains to allow.")
    disk: int | str | None = Field(None, description=(
        "Daytona: disk size, e.g. '10GiB' (with `image`; default Daytona's). Local: what the code may write "
        "to the host's disk in all, uploaded datasets not counted (default 4GiB): one file past it fails with "
        "'File too large'; past it in all, the cell is interrupted, and the session restarted if writing goes on."))
    auto_stop_interval: int | str = Field(
        15, description="Minutes without activity before Daytona stops the sandbox (the crash safety net).")
    auto_delete_interval: int | str = Field(
        0, description="Minutes a stopped sandbox is kept before Daytona deletes it (0: at once).")
    stateful: bool = Field(True, description="Keep variables between runs (code interpreter), or run each cell fresh.")
    api_key_secret: str | None = Field(None, description="Name of a Prefect Secret block holding DAYTONA_API_KEY.")
    target: str | None = Field(None, description="Daytona region, e.g. 'us' or 'eu' (default DAYTONA_TARGET).")

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int | str) -> int | str:
        if parse_size(value) < 256 * 1024**2:
            raise ValueError("expected at least 256MiB")
        return value

    @field_validator("disk")
    @classmethod
    def _disk(cls, value: int | str | None) -> int | str | None:
        if value is not None and parse_size(value) < 1024**3:
            raise ValueError("expected at least 1GiB")
        return value

    @field_validator("snapshot", "image", "api_key_secret", "target")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("expected a non-empty name, or remove the key")
        return value

    @field_validator("api_key_secret")
    @classmethod
    def _block_name(cls, value: str | None) -> str | None:
        return secret_block_name(value)

    @field_validator("network")
    @classmethod
    def _network(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            return value
        if not value:
            raise ValueError("an empty allow list blocks everything: write 'block' instead")
        bad = [entry for entry in value if _allow_entry_kind(entry) is None]
        if bad:
            raise ValueError("not a CIDR range (e.g. 10.0.0.0/8) or a domain (e.g. pypi.org): "
                             + ", ".join(map(repr, bad)))
        return value

    @field_validator("auto_stop_interval")
    @classmethod
    def _auto_stop(cls, value: int | str) -> int | str:
        if parse_minutes(value) < 1:
            raise ValueError("expected at least 1 minute: 0 would turn off the safety net for a crashed run")
        return value

    @field_validator("auto_delete_interval")
    @classmethod
    def _auto_delete(cls, value: int | str) -> int | str:
        if parse_minutes(value) < 0:
            raise ValueError("expected 0 (delete as soon as it stops) or more minutes")
        return value

    @model_validator(mode="after")
    def _daytona_consistent(self) -> SandboxConfig:
        if self.snapshot and self.image:
            raise ValueError("set either 'snapshot' or 'image', not both")
        if self.provider == "daytona" and self.auto_stop_minutes * 60 <= self.timeout:
            raise ValueError(f"auto_stop_interval ({self.auto_stop_minutes} min) must be longer than timeout "
                             f"({self.timeout:g} s), or Daytona could stop the sandbox during a run")
        return self

    @property
    def file_bytes(self) -> int:
        """Local: the quota on what the code writes under /sandbox, and so on any one file."""
        return parse_size(self.disk) if self.disk is not None else DEFAULT_LOCAL_FILE_BYTES

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory)

    @property
    def auto_stop_minutes(self) -> int:
        return parse_minutes(self.auto_stop_interval)

    @property
    def auto_delete_minutes(self) -> int:
        return parse_minutes(self.auto_delete_interval)

    @property
    def network_allow(self) -> tuple[list[str], list[str]]:
        """The allow list split as Daytona takes it: (CIDR ranges, domains)."""
        if isinstance(self.network, str):
            return [], []
        kinds = [(_allow_entry_kind(e), e.strip()) for e in self.network]
        return [e for k, e in kinds if k == "cidr"], [e for k, e in kinds if k == "domain"]


def _allow_entry_kind(entry: str) -> str | None:
    entry = str(entry).strip()
    try:
        ipaddress.ip_network(entry, strict=False)
        return "cidr"
    except ValueError:
        pass
    return "domain" if _DOMAIN.match(entry) else None


class ScheduleConfig(Strict):
    """When the analysis's deployment runs: exactly one of cron, interval and rrule."""

    cron: str | None = Field(None, description="A cron expression, e.g. '0 7 * * 1' (Mondays at 07:00).")
    interval: float | str | None = Field(None, description=(
        "A duration between runs: '1h', '30m', '1d', '90s' or seconds."))
    rrule: str | None = Field(None, description="An iCalendar recurrence rule, e.g. 'FREQ=WEEKLY;BYDAY=MO'.")
    timezone: str = Field("UTC", description="The IANA time zone the schedule is read in, e.g. 'Europe/Paris'.")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; expected an IANA name such as 'Europe/Paris'") from None
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float | str | None) -> float | str | None:
        if value is not None and parse_duration(value) <= 0:
            raise ValueError("expected a positive duration")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleConfig:
        given = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of cron, interval, rrule; got {', '.join(given) or 'none'}")
        if self.cron is not None:
            _check_cron(self.cron)
        if self.rrule is not None:
            _check_rrule(self.rrule)
        return self

    @property
    def interval_timedelta(self) -> timedelta | None:
        return None if self.interval is None else timedelta(seconds=parse_duration(self.interval))


# Prefect's own checks (prefect._internal.schemas.validators), so that what passes here deploys.
MAX_RRULE_LENGTH = 6500


def _check_cron(cron: str) -> None:
    if not croniter.is_valid(cron):
        raise ValueError(f'Invalid cron string: "{cron}"')
    if any(field.casefold() in ("r", "h") for field in cron.split()):
        raise ValueError(f'Random and Hashed expressions are unsupported, received: "{cron}"')


def _check_rrule(rule: str) -> None:
    try:
        dateutil.rrule.rrulestr(rule, cache=True)
    except ValueError as exc:
        raise ValueError(f'Invalid RRule string "{rule}": {exc}') from None
    if len(rule) > MAX_RRULE_LENGTH:
        raise ValueError(f'Invalid RRule string "{rule[:40]}...": the longest allowed is {MAX_RRULE_LENGTH} '
                         f"characters, got {len(rule)}")


class WindowConfig(Strict):
    """The period of data each run covers, computed from the run's time (see docs/deployments.md)."""

    length: str = Field(description="How long the window is: '7d', '24h', '2 weeks', '1 month'.")
    align: Literal["day", "week", "month"] | None = Field(None, description=(
        "End the window at the last day, week (Monday 00:00) or month boundary at or before the run's time, "
        "rather than at the run's time itself."))

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"length": value} if isinstance(value, (str, int)) and not isinstance(value, bool) else value

    @field_validator("length", mode="before")
    @classmethod
    def _length(cls, value: Any) -> str:
        return str(parse_window_length(value))

    @property
    def parsed_length(self) -> WindowLength:
        return parse_window_length(self.length)


_BLOCK_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*/[a-z0-9]+(?:-[a-z0-9]+)*$")


class OutputsConfig(Strict):
    """Where a run's files and its saved model turns go."""

    dir: str = Field("outputs/", description=(
        "The folder (relative to the config file) under which each run writes <name>/<timestamp>-<flow run id>/."))
    results_storage: str | None = Field(None, description=(
        "Where the model's turns are persisted so that a retried or resumed run never pays for one twice: "
        "a Prefect filesystem block, as 'block-type/block-name' (e.g. 's3-bucket/analyst-results'), for "
        "workers on several hosts. Default: the folder .results under outputs.dir."))
    keep_data: bool = Field(False, description=(
        "Save the exact data the run analysed, as Parquet in the run folder (data/<name>.parquet), so that "
        "--replay and --resume run on the same data later, even from a database or a bucket that has moved on: "
        "they read data/<name>.parquet beside the transcript instead of the source when it is there."))
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description=(
        "How many run folders stay and for how long (keep_runs, max_age). Default: all of them, forever."))

    @field_validator("results_storage")
    @classmethod
    def _block_slug(cls, value: str | None) -> str | None:
        if value is not None and not _BLOCK_SLUG.match(value):
            raise ValueError("expected a Prefect block as 'block-type/block-name', e.g. 'local-file-system/results' "
                             "(see `prefect block ls`)")
        return value


class ConcurrencyConfig(Strict):
    """How many runs and sandboxes may be alive at once; read by `analyst serve` and `analyst deploy`."""

    runs: int = Field(1, ge=1, le=1000, description=(
        "Runs of this analysis at once: the concurrency limit of its deployment analyze/<name>. "
        "A run triggered or scheduled while that many are running waits for one to end (see when_busy)."))
    when_busy: Literal["wait", "cancel"] = Field("wait", description=(
        "What a run that finds `runs` runs already going does: wait (default) for a free slot, "
        "or cancel itself (a scheduled run skipped while the previous one is still going)."))
    sandboxes: int | None = Field(None, ge=1, le=10_000, description=(
        "Sandboxes alive at once across ALL analyses (the Prefect global concurrency limit 'sandboxes'), "
        "set on the server by `analyst serve` and `analyst deploy`; configs that set it must agree. "
        "Unset: left as it is on the server (`analyst limits set sandboxes N`; no limit: not capped)."))


RESULT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Names a result cannot take: the history table's own columns, and what an alert's condition reads beside results.
RESERVED_RESULT_NAMES = frozenset({"time", "window", "status", "cost_usd", "alerts", "summary", "flow_run",
                                   "previous", "data", "validation", "run"})


class ResultField(Strict):
    """One value the analysis returns beside its report, checked against its type and bounds."""

    type: Literal["number", "integer", "string", "boolean", "date", "list", "enum"] = Field(description=(
        "number, integer, string, boolean, date (YYYY-MM-DD), list (a list of strings) or enum (one of `values`)."))
    description: str = Field(min_length=1, description=(
        "What the value is, for Claude (it is the field's description in the submit_results tool) and the report."))
    unit: str | None = Field(None, description="Shown beside the value, e.g. 'EUR' or '%'.")
    minimum: float | None = Field(None, description="For number and integer: the smallest value accepted.")
    maximum: float | None = Field(None, description="For number and integer: the largest value accepted.")
    values: list[str] | None = Field(None, min_length=1, description="For enum: the values accepted.")

    @model_validator(mode="after")
    def _consistent(self) -> ResultField:
        if self.type == "enum" and not self.values:
            raise ValueError("type enum needs `values`: the list of values accepted")
        if self.type != "enum" and self.values is not None:
            raise ValueError(f"`values` is for type enum, not {self.type}; remove it or set type: enum")
        bounded = [k for k in ("minimum", "maximum") if getattr(self, k) is not None]
        if bounded and self.type not in ("number", "integer"):
            raise ValueError(f"{' and '.join(bounded)}: bounds are for number and integer only, not {self.type}")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum:g}) is larger than maximum ({self.maximum:g})")
        return self


class AnalysisConfig(Strict):
    """One analysis: the data, the question, the model, the sandbox and when it runs."""

    name: str = Field(description=(
        "A slug (lowercase letters, digits, single dashes). Names the deployment analyze/<name> and the "
        "artifact keys."))
    description: str = Field("", description="Shown on the deployment.")
    tags: list[str] = Field(default_factory=list, description="Prefect tags for the deployment and its runs.")
    datasets: list[DatasetConfig] = Field(min_length=1, description="One or more datasets, with unique names.")
    prompt: str = Field(min_length=1, description="The question to answer.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The model and its budgets.")
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig, description="Where the code runs.")
    schedule: ScheduleConfig | None = Field(None, description=(
        "When the deployment runs. Default: no schedule (the deployment runs on demand)."))
    window: WindowConfig | None = Field(None, description=(
        "The period of data each run covers, from the run's time: '7d', '1 month', or a mapping with length "
        "and align (day, week, month). Used as {{ window.start }}, {{ window.end }} (exclusive) and "
        "{{ window.last_day }} in any string of the config. Default: none ({{ as_of }} still works)."))
    outputs: OutputsConfig = Field(default_factory=OutputsConfig, description="Where the results go.")
    results: dict[str, ResultField] = Field(default_factory=dict, description=(
        "Named values Claude returns beside its report, through the submit_results tool, checked with their "
        "type and bounds: a mapping of snake_case names to fields. They go to results.json in the run folder, "
        "the top of the report, the artifact <name>-results and the run's summary."))
    retries: int = Field(0, ge=0, le=10, description=(
        "Times Prefect runs a failed run again; each retry resumes where the failed attempt stopped."))
    retry_delay: float | str = Field("30s", description="Wait before each retry in whole seconds, e.g. '30s', '5m', 0.")
    concurrency: ConcurrencyConfig = Field(default_factory=ConcurrencyConfig, description=(
        "Runs and sandboxes at once (read when the deployment is registered)."))
    memory: MemoryConfig = Field(default_factory=MemoryConfig, description=(
        "What Claude is told of the previous completed runs (results, report summary, window), so the report "
        "says what changed since the last run. 'false' turns it off; {runs: N} gives the last N."))
    history: HistoryConfig = Field(default_factory=HistoryConfig, description=(
        "The run-over-run table (artifact <name>-history, `analyst history`) and the trend charts of numeric results."))
    notify: list[NotifyConfig] = Field(default_factory=list, description=(
        "Notifications: [{block: 'slack-webhook/analyses', on: [failed, crashed]}, ...]. A message names the "
        "analysis, status, window, key results, alerts, cost and links to the run and its report; never a secret."))
    alerts: list[AlertConfig] = Field(default_factory=list, description=(
        "Named conditions checked after each run (and when the data fails validation): [{name: revenue_drop, "
        "when: 'total_revenue < previous.total_revenue * 0.9', message: ...}]. One that holds heads the report "
        "and the run's state message, emits the Prefect event analysis.alert and sends the notify entries with "
        "on: [alert]. See docs/configuration.md#alerts."))

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.match(value):
            raise ValueError(
                f"{value!r} is not a slug: expected lowercase letters, digits and single dashes, e.g. 'weekly-sales'"
            )
        return value

    @field_validator("datasets")
    @classmethod
    def _unique_names(cls, value: list[DatasetConfig]) -> list[DatasetConfig]:
        names = [d.name for d in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"dataset names must be unique; repeated: {', '.join(duplicates)}")
        return value

    @field_validator("results")
    @classmethod
    def _result_names(cls, value: dict[str, ResultField]) -> dict[str, ResultField]:
        bad = [name for name in value if not RESULT_NAME.match(name)]
        if bad:
            raise ValueError(f"result names must be snake_case (lowercase letters, digits, underscores, starting "
                             f"with a letter), e.g. 'total_revenue'; got {', '.join(repr(b) for b in bad)}")
        taken = sorted(RESERVED_RESULT_NAMES.intersection(value))
        if taken:
            raise ValueError(f"{', '.join(repr(t) for t in taken)}: reserved (a column of the history table or a "
                             f"name alerts read); rename the result, e.g. '{taken[0]}_value'")
        return value

    @field_validator("alerts")
    @classmethod
    def _alert_names_known(cls, value: list[AlertConfig], info: ValidationInfo) -> list[AlertConfig]:
        if "results" in info.data and "datasets" in info.data:  # else their own errors are reported
            check_alerts(value, info.data["results"], [d.name for d in info.data["datasets"]])
        return value

    @field_validator("retry_delay")
    @classmethod
    def _retry_delay(cls, value: float | str) -> float | str:
        seconds = parse_duration(value)
        if seconds < 0 or not float(seconds).is_integer():  # Prefect stores a run's retry delay in whole seconds
            raise ValueError("expected a whole number of seconds such as '30s' or '5m', or 0")
        return value

    @property
    def retry_delay_seconds(self) -> int:
        """An int: the server keeps a run's retry delay as an integer and refuses 1.5 (HTTP 422, which
        would crash the run); ``_retry_delay`` accepts whole seconds only."""
        return int(parse_duration(self.retry_delay))
