"""The config's ``notify`` list and ``outputs.retention``: who hears about a run, and how long its files stay."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.config.source_schema import BLOCK_SLUG

NotifyOn = Literal["completed", "failed", "crashed", "alert", "validation_failed"]
EMAIL_BLOCK_TYPE = "email-server-credentials"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _seconds(value: float | str) -> float:
    from tasks.config.schema import parse_duration  # noqa: PLC0415 - schema.py imports this module (a cycle)

    return parse_duration(value)


DEFAULT_ON: tuple[NotifyOn, ...] = ("failed", "crashed", "validation_failed")


class NotifyConfig(_Strict):
    """One notification: a Prefect notification block and the outcomes it is sent for."""

    block: str = Field(description=(
        "A Prefect notification block as 'block-type/block-name': slack-webhook, ms-teams-webhook, "
        "custom-webhook, or email-server-credentials (prefect-email; then give 'to'). `prefect block ls` lists them."))
    on: list[NotifyOn] = Field(default_factory=lambda: list(DEFAULT_ON), min_length=1,
                               description=(
        "The outcomes that send it: completed, failed, crashed (sent by a Prefect automation that `analyst "
        "serve` and `analyst deploy` keep on the server, since a killed process cannot speak), alert, "
        "validation_failed. Default: failed, crashed, validation_failed (for email: failed, validation_failed)."))
    to: list[str] = Field(default_factory=list, description=(
        "The recipients' addresses, for an email-server-credentials block only."))

    @field_validator("block")
    @classmethod
    def _block_slug(cls, value: str) -> str:
        if not BLOCK_SLUG.match(value):
            raise ValueError("expected a Prefect block as 'block-type/block-name', e.g. 'slack-webhook/analyses' "
                             "(see `prefect block ls`)")
        return value

    @model_validator(mode="after")
    def _recipients(self) -> NotifyConfig:
        is_email = self.block.startswith(EMAIL_BLOCK_TYPE + "/")
        if is_email and not self.to:
            raise ValueError("an email-server-credentials block needs 'to': the recipients' addresses")
        if self.to and not is_email:
            raise ValueError("'to' is for an email-server-credentials block only; a webhook block knows its channel")
        if is_email and "on" not in self.model_fields_set:
            self.on = [o for o in self.on if o != "crashed"]  # the default, less what email cannot carry
        if is_email and "crashed" in self.on:
            raise ValueError("'crashed' cannot be emailed: the Prefect server sends it, and it sends through "
                             "notification blocks only (slack-webhook, ms-teams-webhook, custom-webhook)")
        return self


class RetentionConfig(_Strict):
    """How many run folders stay, and for how long; applied at the end of every run and by `analyst prune`."""

    keep_runs: int | None = Field(None, ge=1, description=(
        "Keep the newest N run folders of this analysis; older ones are deleted. Unset: no count limit."))
    max_age: float | str | None = Field(None, description=(
        "Delete run folders, and the saved model turns of failed runs, older than this, e.g. '90d', '12h'. "
        "Unset: no age limit. A completed run's saved turns are deleted when it ends (it is never resumed)."))

    @field_validator("max_age")
    @classmethod
    def _positive(cls, value: float | str | None) -> float | str | None:
        if value is not None and _seconds(value) <= 0:
            raise ValueError("expected a duration above zero such as '90d' or '12h'")
        return value

    @property
    def max_age_seconds(self) -> float | None:
        return None if self.max_age is None else _seconds(self.max_age)
