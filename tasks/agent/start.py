"""A new run's transcript: what Claude is told (system prompt, datasets, tools, the earlier runs) before
the first turn.

Shared by the flow and by anything that runs the loop without it (the overhead benchmark's baseline).
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks.agent.fingerprint import sandbox_settings
from tasks.agent.prompts import RESULTS_SECTION, build_system_prompt, dataset_prompt_summary
from tasks.memory import first_user_message
from tasks.transcript import Transcript
from tasks.config import AnalysisConfig
from tasks.datasets import DatasetReport
from tasks.models import ModelProvider, run_python_tool
from tasks.results import results_model, submit_results_tool


def start_transcript(config: AnalysisConfig, reports: Sequence[DatasetReport], provider: ModelProvider, *,
                     flow_run_id: str = "") -> Transcript:
    results = results_model(config)
    summaries = [dataset_prompt_summary(r, f"data/{d.sandbox_filename}") for r, d in zip(reports, config.datasets)]
    return Transcript(
        analysis=config.name,
        model=provider.model,
        provider=provider.name,
        system=build_system_prompt(summaries, python_version="3", timeout=config.sandbox.timeout,
                                   max_output_chars=config.sandbox.max_output_chars)
        + (RESULTS_SECTION if results else ""),
        prompt=config.prompt,
        tools=[run_python_tool(), *([submit_results_tool(results)] if results else [])],
        datasets=[r.to_dict() for r in reports],
        fingerprint={"sandbox": sandbox_settings(config.sandbox)},
        flow_run_id=flow_run_id,
    )


def open_conversation(transcript: Transcript) -> None:
    """The first user message: the prompt, then what ``transcript.memory`` holds of the earlier runs.
    A transcript that already has one (a resume, a retry) keeps it as it was sent."""
    if not transcript.messages:
        transcript.messages.append(first_user_message(transcript.prompt, transcript.memory))
