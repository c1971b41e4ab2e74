"""The ``analyze`` flow: config -> validated data -> sandbox -> Claude's loop -> report and charts.

Read top to bottom, it is the order of the steps; each step is a task in ``tasks/``. The sandbox is
torn down whatever happens: success, failure, exception, timeout or cancellation.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_client, get_run_logger
from prefect.exceptions import TerminationSignal
from prefect.runtime import flow_run
from prefect.settings import get_current_settings

from tasks.agent import events
from tasks.agent.loop import AnalysisLoop, LoopLimits
from tasks.agent.fingerprint import data_fingerprints
from tasks.agent.resume import RESUMABLE, check_same_data, find_earlier_run, resume_transcript, transcript_file
from tasks.agent.start import open_conversation, start_transcript
from tasks.transcript import TRANSCRIPT_FILE, IterationRecord, Transcript
from tasks.config import LoadedConfig
from tasks.models import create_provider
from tasks.prefect.alerts import alert_on_invalid_data, raise_alerts, with_alerts
from tasks.prefect.artifacts import ProgressBar, publish_iteration
from tasks.prefect.collect import collect_artifacts, publish_outcome
from tasks.prefect.configure import load_analysis_config
from tasks.prefect.crash_hooks import delete_flow_run_sandboxes
from tasks.prefect.heartbeat import flow_run_heartbeats
from tasks.prefect.history import chart_trends, known_runs, record_run
from tasks.prefect.iterate import rebuild_sandbox, run_iteration, write_final_report
from tasks.prefect.model import persist_turns
from tasks.prefect.notifications import notify_completed, notify_failed
from tasks.prefect.background import in_background, settled
from tasks.prefect.provision import SandboxStart, provision_sandbox, teardown_sandbox, upload_datasets
from tasks.prefect.publisher import ArtifactPublisher
from tasks.prefect.retention import tidy_up_after_run
from tasks.prefect.sandbox_slots import SandboxSlot
from tasks.prefect.secret_blocks import read_secret_block
from tasks.prefect.source_blocks import use_kept_data
from tasks.prefect.validate import DataInvalid, validate_datasets
from tasks.alerts import alert_line
from tasks.memory import recall
from tasks.results import results_model
from tasks.run_history import record_of
from tasks.reports import ReportsNotWritten


def _run_name() -> str:
    """``weekly-sales``, or ``weekly-sales@2026-11-02T07:00`` for a run given an ``as_of``."""
    name = Path(flow_run.parameters.get("config", "analysis")).stem
    as_of = flow_run.parameters.get("as_of")
    return f"{name}@{as_of}" if as_of else name


def _run_time() -> str | None:
    """A scheduled run covers the time it was scheduled for, not the time a worker picked it up."""
    scheduled = flow_run.scheduled_start_time if flow_run.get_id() else None
    return scheduled.isoformat() if scheduled else None


# Prefect's local default, named here: a flow with no result storage of its own, and no persist_result,
# has the engine ask the server for its default result storage three times before the flow's first
# line. The flow's return value (the summary) is not persisted: the run folder holds all of it, and
# the model's turns, the only results read back, name their own storage (tasks/prefect/model.py).
_RESULT_STORAGE = get_current_settings().results.local_storage_path


@flow(name="analyze", flow_run_name=_run_name, log_prints=False, persist_result=False,
      result_storage=_RESULT_STORAGE,
      on_crashed=[delete_flow_run_sandboxes], on_cancellation=[delete_flow_run_sandboxes],
      on_completion=[notify_completed], on_failure=[notify_failed])
def analyze(config: str, overrides: dict[str, Any] | None = None, replay: str | None = None,
            resume: str | None = None, as_of: str | None = None) -> dict[str, Any]:
    """Run the analysis declared in the YAML file ``config``.

    ``overrides`` are applied on top of the file, like the CLI's ``--set``: dotted keys
    (``{"model.max_iterations": 3}``) or nested mappings (``{"model": {"max_iterations": 3}}``).
    ``replay`` replays the model's turns from a transcript.json instead of calling the model.
    ``resume`` is the folder of an unfinished run of this analysis to go on from (``--resume``); a
    retry of this flow run goes on from its failed attempt without it.
    ``as_of`` (an ISO date-time) is the run's time, from which its window and ``{{ }}`` templates are
    computed; default: the flow run's scheduled start time (now, for a run started by hand).
    """
    with flow_run_heartbeats():
        return _analyze(config, overrides, replay, resume, as_of)


def _analyze(config: str, overrides: dict[str, Any] | None, replay: str | None, resume: str | None,
             as_of: str | None) -> dict[str, Any]:
    logger = get_run_logger()
    events.emit("flow_run", {"flow_run_id": str(flow_run.get_id() or "")})
    loaded = load_analysis_config(config, overrides, as_of or _resumed_run_time(resume) or _run_time())
    cfg = loaded.config
    tagging = in_background(_tag_window, loaded, name="tag-window")  # nothing before the first request waits on it
    history = in_background(known_runs, loaded, name="read-history")  # a server round trip, read while data is checked
    # A replay or resume reads the data the run it repeats kept (data/ beside its transcript), if any.
    use_kept_data(loaded, transcript_file(Path(resume)) if resume else Path(replay) if replay else None)
    flow_run_id = str(flow_run.get_id() or "")
    earlier = find_earlier_run(loaded.outputs_dir / cfg.name, flow_run_id, resume)
    slot = SandboxSlot(flow_run_id)  # the global cap on live sandboxes, if one is set
    labels = {"analysis": cfg.name, "flow-run": flow_run_id}
    # A new run's sandbox starts while its data is validated; one that goes on from another run starts it later.
    early = None if earlier else SandboxStart(lambda: provision_sandbox(loaded, labels=labels), slot)
    try:
        reports = validate_datasets(loaded)
        provider = create_provider(cfg.model, loaded.base_dir, replay=replay, read_secret=read_secret_block)
        transcript = start_transcript(cfg, reports, provider, flow_run_id=flow_run_id)
        transcript.run_time = loaded.run_time.to_dict()
        run_dir = earlier.file.parent if earlier and earlier.retry else _new_run_dir(loaded)
        if earlier:
            transcript = resume_transcript(earlier, transcript, run_dir)
        transcript.run_key = transcript.run_key or transcript.flow_run_id or flow_run_id
        earlier_runs = history.result()  # the history this run adds to
        if earlier is None:  # a resume or retry goes on with what its first attempt was told of earlier runs
            transcript.memory = recall(cfg.memory, transcript, earlier_runs, provider)
        open_conversation(transcript)
        provider = persist_turns(provider, transcript.run_key, loaded, run_dir)
    except BaseException as stopped:  # invalid data, or any stop before the run's own clean-up below: no sandbox left
        _teardown(early.settle() if early else None)
        slot.release()
        settled(tagging)
        if isinstance(stopped, DataInvalid):  # alerts on validation.failed or status are told before the run fails
            alert_on_invalid_data(loaded, stopped, history.result)
        raise
    limits = LoopLimits.from_config(cfg)
    logger.info("Run folder: %s", run_dir)
    events.emit("started", {"flow_run_id": transcript.flow_run_id, "run_dir": str(run_dir)})
    if earlier:
        logger.info("Resuming %s after iteration %d", earlier.file, len(transcript.iterations))
        events.emit("resumed", {"from": str(earlier.file.parent), "iterations": len(transcript.iterations)})

    sandbox = None
    publisher = ArtifactPublisher()
    failed = False
    ended_before = transcript.status not in RESUMABLE  # a retry of an attempt that ended: only its clean-up failed
    try:
        if ended_before:
            logger.info("This run already ended (%s): cleaning up only", transcript.status)
            return with_alerts(summarize(transcript, run_dir), transcript)
        sandbox = early.sandbox() if early else None  # None: no slot was free when it would have started
        if sandbox is None:
            slot.acquire()
            sandbox = provision_sandbox(loaded, labels=labels)
        uploaded = upload_datasets(sandbox, loaded, run_dir)
        check_same_data(transcript, uploaded.digests, earlier.file if earlier else None,
                        {name: uploaded.kept_hashes[name] for name in uploaded.read_kept})
        # the run's window where its transcript records one (a scheduled run's as_of); else None
        window = (transcript.run_time or {}).get("window")
        transcript.data = data_fingerprints(reports, uploaded, window, transcript.data)
        if earlier:
            rebuild_sandbox(sandbox, transcript, limits.code_timeout)
        loop = AnalysisLoop(provider, sandbox, transcript, run_dir, limits, results_model(cfg))
        progress = ProgressBar(cfg.name, limits.max_iterations)
        publisher.submit(progress.create)

        def iteration() -> IterationRecord:
            return run_iteration(loop, loop.iterations + 1)

        def published(record: IterationRecord) -> None:
            publisher.submit(publish_iteration, cfg.name, record, run_dir)
            publisher.submit(progress.move_to, 100 * record.number / limits.max_iterations, latest="progress")

        with events.listening(_log_event):
            loop.run(step=iteration, final_report=lambda: write_final_report(loop), after_iteration=published)
        publisher.submit(progress.move_to, 100, latest="progress")
    except BaseException as exc:
        failed = True
        transcript.fail(_why_stopped(exc))
        raise
    finally:
        cleanup = _Cleanup()
        if not ended_before:  # that attempt evaluated them and emitted their events
            cleanup.attempt("evaluate the alerts", lambda: raise_alerts(loaded, transcript, earlier_runs))
        unsaved = cleanup.attempt("save the transcript", lambda: transcript.save(run_dir / TRANSCRIPT_FILE))
        if unsaved is not None:  # the reports must not call a run complete that left no record
            detail = f"could not save {run_dir / TRANSCRIPT_FILE} ({type(unsaved).__name__}: {unsaved})"
            transcript.finish("failed", f"{transcript.stop_detail}; {detail}" if transcript.status == "failed"
                              else detail)
        # Drawn while the sandbox stops (mostly a wait on its kernel), and before the reports, which show it.
        charting = in_background(lambda: chart_trends(loaded, record_of(transcript), earlier_runs, run_dir, publisher),
                                 name="trend-chart")
        _teardown(sandbox or (early.settle() if early else None))
        cleanup.attempt("release the sandbox slot", slot.release)
        settled(tagging)
        cleanup.attempt("close the model provider", provider.close)
        # The artifacts below are rendered here and sent from the publisher's thread while the run goes on;
        # closing it last waits for the ones still on their way.
        cleanup.attempt("publish the results and usage", lambda: publish_outcome(transcript, publisher))
        cleanup.attempt("draw the trend charts", charting.result)
        _collect(transcript, run_dir, publisher)
        cleanup.attempt("add the run to the history",
                        lambda: record_run(loaded, record_of(transcript), earlier_runs, publisher))
        cleanup.attempt("apply outputs.retention",
                        lambda: tidy_up_after_run(loaded, provider, transcript, run_dir))
        cleanup.attempt("publish the remaining artifacts", publisher.close)
        cleanup.reraise_interruption()
        if unsaved is not None and not failed:
            raise TranscriptNotSaved(transcript.stop_detail)
    # A Completed state naming the alerts when some fired; Prefect hands the caller its data, the summary.
    return with_alerts(summarize(transcript, run_dir) | ({"replayed": replay} if replay else {}), transcript)


class TranscriptNotSaved(RuntimeError):
    """The run ended but its record could not be written (a full disk, a folder made read-only)."""


class _Cleanup:
    """Clean-up steps that each run whatever the others do. A failed step is logged, not raised: it
    must not replace the run's own outcome, nor fail a run whose transcript says it completed (a retry
    of it would find nothing to resume). A cancellation that lands mid clean-up is raised at its end."""

    def __init__(self) -> None:
        self.interruption: BaseException | None = None

    def attempt(self, what: str, step: Callable[[], object]) -> BaseException | None:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - see the class docstring
            get_run_logger().exception("Could not %s", what)
            return exc
        except BaseException as exc:  # noqa: BLE001 - cancelled mid clean-up: finish it first
            self.interruption = self.interruption or exc
            return exc
        return None

    def reraise_interruption(self) -> None:
        if self.interruption is not None:
            raise self.interruption


def summarize(transcript: Transcript, run_dir: Path) -> dict[str, Any]:
    return {
        "analysis": transcript.analysis,
        "status": transcript.status,
        "detail": transcript.stop_detail,
        "run_dir": str(run_dir),
        "report": str(run_dir / "report.md"),
        "charts": [c for cell in transcript.cells for c in cell.charts],
        "flow_run_id": transcript.flow_run_id,
        "iterations": len(transcript.iterations),
        "usage": transcript.usage.to_dict(),
        "cost_usd": transcript.cost_usd,
        "run_time": transcript.run_time,
        "data": transcript.data,
        "results": transcript.results,
        "alerts": [alert_line(a) for a in transcript.alerts],
    }


def _why_stopped(exc: BaseException) -> str:
    if isinstance(exc, TerminationSignal):  # Prefect's runner turns a cancellation into SIGTERM
        return (f"cancelled: the flow run's process received {signal.Signals(exc.signal).name} (cancelled from the "
                "Prefect UI or `prefect flow-run cancel`, or its worker was stopped)")
    return f"{type(exc).__name__}: {exc}"


def _teardown(sandbox: Any) -> None:
    if sandbox is None:
        return
    try:
        teardown_sandbox(sandbox)
    except BaseException:  # noqa: BLE001 - cancellation may stop the task engine; tear down directly
        try:
            sandbox.teardown()
        except Exception:  # noqa: BLE001 - never hide the run's own outcome; leftovers: analyst sandboxes cleanup
            get_run_logger().exception("Could not tear the sandbox down")


def _collect(transcript: Transcript, run_dir: Path, publisher: ArtifactPublisher | None = None) -> None:
    """Write the reports; a run whose reports are missing is not reported as completed."""
    try:
        collect_artifacts(transcript, run_dir, publisher)
    except BaseException as exc:  # noqa: BLE001 - never mask the run's own outcome; the transcript is on disk
        get_run_logger().exception("Could not write the reports of %s", run_dir)
        problem = (str(exc) if isinstance(exc, ReportsNotWritten)
                   else f"reports not written ({type(exc).__name__}: {exc})")
        if transcript.status == "failed":
            transcript.stop_detail = f"{transcript.stop_detail}; {problem}" if transcript.stop_detail else problem
        else:
            transcript.finish("failed", problem)
        try:
            transcript.save(run_dir / TRANSCRIPT_FILE)
        except OSError:  # the summary still says failed; the earlier save holds the analysis itself
            get_run_logger().exception("Could not save %s", run_dir / TRANSCRIPT_FILE)


def _new_run_dir(loaded: LoadedConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_id = str(flow_run.get_id() or "local")[:8]
    window = loaded.run_time.window
    covers = f"{window.label()}-" if window else ""  # the flow run id stays last: retries find the folder by it
    run_dir = loaded.outputs_dir / loaded.config.name / f"{stamp}-{covers}{run_id}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _resumed_run_time(resume: str | None) -> str | None:
    """A resumed run covers the period of the run it goes on from (its data must be the same)."""
    if resume is None:
        return None
    try:
        earlier = Transcript.load(transcript_file(Path(resume)))
    except Exception:  # noqa: BLE001 - find_earlier_run reports a bad folder in its own words
        return None
    return (earlier.run_time or {}).get("as_of")


def _tag_window(loaded: LoadedConfig) -> None:
    """Tag the flow run ``window:2026-11-23..2026-11-29`` so the UI can filter runs by period."""
    window = loaded.run_time.window
    run_id = flow_run.get_id()
    if window is None or not run_id:
        return
    try:
        with get_client(sync_client=True) as client:
            tags = client.read_flow_run(run_id).tags
            tag = f"window:{window.label()}"
            if tag not in tags:
                client.update_flow_run(run_id, tags=[*tags, tag])
    except Exception:  # noqa: BLE001 - a tag is a convenience; the run folder and transcript record the window
        get_run_logger().warning("Could not tag the flow run with its window", exc_info=True)


def _log_event(kind: str, data: dict[str, Any]) -> None:
    """The loop's progress in the run's logs (the Prefect UI)."""
    logger = get_run_logger()
    if kind == "model_turn" and data["text"]:
        logger.info("Iteration %s, Claude: %s", data["iteration"], _clip(data["text"]))
    elif kind == "code_done":
        cell = data["cell"]
        logger.info("Iteration %s, code run: %s%s", data["iteration"], cell.status,
                    f", {len(cell.charts)} chart(s)" if cell.charts else "")
    elif kind == "context_trimmed":
        logger.warning("Trimmed the %s oldest code output(s) to fit the context window (%s)",
                       data["outputs"], data["reason"])
    elif kind == "finished":
        logger.info("Finished: %s %s", data["status"], data["detail"])


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
