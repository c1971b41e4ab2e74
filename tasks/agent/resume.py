"""Resume a run from its transcript: keep the conversation, rebuild the sandbox, go on.

A run that failed or was killed at iteration N left ``transcript.json`` with iterations 1..N-1 (it
is saved after every one). Resuming keeps that conversation exactly as Claude saw it (the recorded
outputs, not new ones, so the requests that follow are the ones the first attempt would have made),
runs the recorded code cells again in the fresh sandbox so that their variables and files are back,
and lets the loop go on from iteration N. A turn that was received but never recorded (the process
died while its code ran) comes back from the turn cache (``tasks/prefect/model.py``): none is paid twice.

Two ways in: a retry of the same flow run (Prefect's ``retries``, or Retry in the UI) goes on in the
folder of its first attempt; ``analyst run CONFIG --resume RUN_FOLDER`` is a new flow run that
continues another run's transcript in a folder of its own.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tasks.agent import fingerprint
from tasks.agent.prompts import FINAL_REPORT_REQUEST
from tasks.transcript import TRANSCRIPT_FILE, CellRecord, InvalidTranscript, Transcript
from tasks.errors import ConfigError, Problem
from tasks.sandbox.base import Sandbox

RESUMABLE = ("running", "failed")  # running: the process died without a word (killed, machine lost)
_FINAL_REQUEST_START = FINAL_REPORT_REQUEST.split("{", 1)[0]
_RUN_FOLDER_HINT = "expected the folder of an earlier run of this analysis, e.g. outputs/<name>/<YYYYmmdd-HHMMSS>-<id>"


@dataclass(frozen=True)
class EarlierRun:
    file: Path  # its transcript.json
    retry: bool  # an earlier attempt of this very flow run: go on in its folder


def find_earlier_run(run_root: Path, flow_run_id: str, resume: str | Path | None) -> EarlierRun | None:
    """What this run continues: an earlier attempt of this flow run (its folder is named after the
    flow run id), else the run folder given to ``--resume``, else nothing (a new run). The attempt
    comes first: a retry of a resumed run goes on from where the retry's own attempt stopped."""
    if flow_run_id:
        for folder in sorted(run_root.glob(f"*-{flow_run_id[:8]}"), reverse=True):
            file = folder / TRANSCRIPT_FILE
            try:
                if file.is_file() and Transcript.load(file).flow_run_id == flow_run_id:
                    return EarlierRun(file, retry=True)
            except InvalidTranscript:
                continue  # not ours, or unreadable
    if resume is not None:
        return EarlierRun(transcript_file(Path(resume)), retry=False)
    return None


def transcript_file(path: Path) -> Path:
    """``RUN_FOLDER/transcript.json`` (or the file itself), or an error that says what to pass."""
    file = path / TRANSCRIPT_FILE if path.is_dir() else path
    if not file.is_file():
        what = "no such folder" if not path.exists() else f"no {TRANSCRIPT_FILE} in it"
        raise ConfigError([Problem(str(path), "", f"{what}; {_RUN_FOLDER_HINT}")])
    return file


def read_resumable(file: Path, analysis: str, *, ended_ok: bool = False) -> Transcript:
    """The transcript at ``file``, if it is an unfinished run of ``analysis`` (or an ended one, if
    ``ended_ok``)."""
    try:
        earlier = Transcript.load(file)
    except InvalidTranscript as exc:
        raise ConfigError([Problem(str(file), "", f"not a transcript written by a run ({exc}); {_RUN_FOLDER_HINT}")]) \
            from None
    if earlier.analysis != analysis:
        raise ConfigError([Problem(str(file), "analysis", (
            f"this is a run of '{earlier.analysis}', not of '{analysis}': resume it with the config of "
            f"'{earlier.analysis}', or pass a run folder under outputs/{analysis}/"))])
    if earlier.status not in RESUMABLE and not ended_ok:
        raise ConfigError([Problem(str(file), "status", (
            f"this run already ended ({earlier.status}), so there is nothing to resume; start a new run "
            "without --resume"))])
    return earlier


_CONVERSATION = {"prompt": "the prompt", "system": "the data or the sandbox settings (Claude's system prompt)",
                 "tools": "the tools"}


_UNDO = "undo the change to resume, or start a new run without --resume"


def check_same_conversation(earlier: Transcript, fresh: Transcript, file: Path) -> None:
    """Resuming makes sense only if Claude would be told the same (prompt, data summary, tools) and
    the code would run as it did (sandbox settings; the data's bytes are checked at upload)."""
    changed = [key for key in _CONVERSATION if getattr(earlier, key) != getattr(fresh, key)]
    problems = [Problem(str(file), key, (
        f"{_CONVERSATION[key]} changed since this run, so its code and outputs no longer fit: {_UNDO}"))
        for key in changed]
    recorded = earlier.fingerprint.get("sandbox")
    if recorded is not None:  # a transcript written before settings were recorded cannot be checked
        now = fresh.fingerprint.get("sandbox", {})
        problems += [Problem(str(file), f"sandbox.{key}", (
            f"changed since this run ({recorded.get(key)!r}, now {now.get(key)!r}), so its code would not run as "
            f"it did: {_UNDO}")) for key in fingerprint.changed(recorded, now)]
    if problems:
        raise ConfigError(problems)


def check_same_data(transcript: Transcript, digests: dict[str, str], file: Path | None,
                    read_kept: dict[str, str] | None = None) -> None:
    """Record the uploaded data's digests; if ``transcript`` continues the run at ``file``, first
    refuse data that differs from what that run analysed. ``read_kept``: the datasets read from that
    run's kept data (outputs.keep_data), by name, with the hash of the kept file: compared with the hash
    that run recorded of it, since their sources may have moved on."""
    read_kept = read_kept or {}
    recorded = transcript.fingerprint.get("datasets")
    if file is not None and recorded is not None:
        changed = fingerprint.changed({k: v for k, v in recorded.items() if k not in read_kept},
                                      {k: v for k, v in digests.items() if k not in read_kept})
        changed += sorted(name for name, digest in read_kept.items()
                          if transcript.data.get(name, {}).get("kept_hash") != digest)
        if changed:
            raise ConfigError([Problem(str(file), f"datasets.{name}", (
                f"the data changed since this run (its content hash differs), so its code and outputs no longer "
                f"fit: {_UNDO}")) for name in changed])
    transcript.fingerprint["datasets"] = digests


def continue_transcript(earlier: Transcript, *, flow_run_id: str, source: Path, retry: bool) -> Transcript:
    """``earlier``, ready to go on: its unfinished last iteration dropped, running again."""
    drop_unfinished(earlier)
    earlier.run_key = earlier.run_key or earlier.flow_run_id or flow_run_id
    if not retry:
        earlier.resumed_from.append(str(source.parent))
    earlier.flow_run_id = flow_run_id
    earlier.status, earlier.stop_detail, earlier.finished_at, earlier.final_report = "running", "", None, None
    return earlier


def drop_unfinished(transcript: Transcript) -> None:
    """Remove what an interrupted iteration left half done, so the loop can do it again.

    A turn whose tool calls have no results yet (the run died while its code ran) is asked again:
    the turn cache answers it, unpaid. A final-report request that got no answer is sent again.
    """
    messages = transcript.messages
    last_turn = transcript.iterations[-1].turn if transcript.iterations else None
    if messages and messages[-1]["role"] == "assistant" and last_turn is not None and last_turn.tool_calls \
            and last_turn.stop_reason == "tool_use":
        messages.pop()
        transcript.iterations.pop()
    elif messages and messages[-1]["role"] == "user" and isinstance(messages[-1]["content"], list):
        content = messages[-1]["content"]
        last = content[-1] if content else {}
        if last.get("type") == "text" and last.get("text", "").startswith(_FINAL_REQUEST_START):
            content.pop()
            if not content:
                messages.pop()


RESTART = None  # a rebuild step that restarts the Python session instead of running a cell
# Code that ends the session: every sandbox notices its session died and starts a fresh one.
_END_SESSION = "import os\nos._exit(0)"


def lost_with_its_session(cell: CellRecord) -> bool:
    """The session was restarted because of this cell (it hung, or died while it ran): its variables
    went with it. The sandbox then says so in the cell's error ("... was restarted") or times it out;
    a reset without either is a session found dead before the cell ran, which the cell then filled."""
    return cell.state_reset and (cell.timed_out or "restarted" in (cell.error or {}).get("message", ""))


def rebuild_steps(transcript: Transcript) -> list[tuple[int, CellRecord | None]]:
    """How to bring a fresh sandbox to the state the recorded one had: every recorded cell in order
    (files written before a restart survived it), with the session restarted where the original
    was (variables did not), each step with its iteration number; a ``RESTART`` step runs no cell.

    Left out: a cell that timed out or took its session down (it would do so again, and Claude was
    told what happened). A restart before anything ran, or right after another, is left out too.
    """
    steps: list[tuple[int, CellRecord | None]] = []
    restart_due = ran_since_restart = False
    for iteration in transcript.iterations:
        for cell in iteration.cells:
            if lost_with_its_session(cell):
                restart_due = True
                continue
            if cell.state_reset:
                restart_due = True
            if cell.timed_out:
                continue
            if restart_due and ran_since_restart:
                steps.append((iteration.number, RESTART))
            restart_due, ran_since_restart = False, True
            steps.append((iteration.number, cell))
    if restart_due and ran_since_restart:
        steps.append((transcript.iterations[-1].number, RESTART))
    return steps


def cells_to_rerun(transcript: Transcript) -> list[tuple[int, CellRecord]]:
    """The recorded cells whose variables the sandbox held at the end: those since its last restart."""
    steps = rebuild_steps(transcript)
    last_restart = max((k for k, (_, cell) in enumerate(steps) if cell is RESTART), default=-1)
    return [(n, cell) for n, cell in steps[last_restart + 1:] if cell is not None]


def rebuild_sandbox(sandbox: Sandbox, transcript: Transcript, timeout: float,
                    on_cell: Callable[[int, CellRecord], None] | None = None) -> list[str]:
    """Run the recorded cells again (``rebuild_steps``); their new outputs are dropped (the conversation
    keeps the recorded ones). Returns a note for each step whose outcome differs from the record."""
    notes = []
    for number, cell in rebuild_steps(transcript):
        if cell is RESTART:
            if not sandbox.run_code(_END_SESSION, timeout=timeout).state_reset:
                notes.append(f"the Python session could not be restarted where it was after iteration {number}; "
                             "variables that were gone then are still defined")
            continue
        if on_cell is not None:
            on_cell(number, cell)
        result = sandbox.run_code(cell.code, timeout=timeout)
        was = "an error" if cell.error else "ok"
        now = "a timeout" if result.timed_out else ("an error" if result.error else "ok")
        if now != was:
            detail = f" ({result.error.name}: {result.error.message})" if result.error else ""
            notes.append(f"a cell of iteration {number} was {was} and is {now} when run again{detail}; "
                         "the sandbox may not hold what Claude expects")
    return notes


def copy_charts(source_dir: Path, run_dir: Path) -> None:
    """The earlier run's charts, so the resumed run's report shows every chart its transcript names."""
    charts = source_dir / "charts"
    if charts.is_dir() and source_dir.resolve() != run_dir.resolve():
        shutil.copytree(charts, run_dir / "charts", dirs_exist_ok=True)


def resume_transcript(earlier: EarlierRun, fresh: Transcript, run_dir: Path) -> Transcript:
    """The transcript this run goes on with, checked against the one it would start with (``fresh``).

    A retry of an attempt whose transcript had ended gets it back as it is: that attempt failed only
    in its clean-up (closing a client, releasing its slot), and there is nothing left to do but that."""
    transcript = read_resumable(earlier.file, fresh.analysis, ended_ok=earlier.retry)
    if transcript.status not in RESUMABLE:
        return transcript
    check_same_conversation(transcript, fresh, earlier.file)
    copy_charts(earlier.file.parent, run_dir)
    return continue_transcript(transcript, flow_run_id=fresh.flow_run_id or "", source=earlier.file,
                               retry=earlier.retry)
