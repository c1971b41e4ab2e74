"""Transcripts read back are untrusted input (``--replay`` takes any file): every malformed one fails
with one line naming the place inside it, and the shipped transcript still loads and saves unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.transcript import MAX_TRANSCRIPT_BYTES, InvalidTranscript, Transcript
from tasks.errors import ModelError
from tasks.models.replay import ReplayProvider

SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "retail-sales.transcript.json"


def shipped() -> dict:
    return json.loads(SHIPPED.read_text())


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "transcript.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def with_cell_code(code: object) -> dict:
    data = shipped()
    data["iterations"][0]["cells"][0]["code"] = code
    return data


@pytest.mark.parametrize(("content", "problem"), [
    ([], "the whole file: expected a mapping"),
    ("[1, 2]", "the whole file: expected a mapping"),
    ({**shipped(), "iterations": "many"}, "iterations: expected a list"),
    ({**shipped(), "iterations": [1]}, "iterations[0]: expected a mapping"),
    (with_cell_code(7), "iterations[0].cells[0].code: expected a string"),
    ({**shipped(), "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ({k: v for k, v in shipped().items() if k != "prompt"}, "prompt: missing"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply to be a transcript"),
    ('{"analysis": ', "not valid JSON (Expecting value at line 1 column 14)"),
])
def test_a_malformed_transcript_fails_with_one_line_naming_the_place(tmp_path, content, problem) -> None:
    path = write(tmp_path, content)
    with pytest.raises(InvalidTranscript) as caught:
        Transcript.load(path)
    assert str(caught.value).startswith(problem) and "\n" not in str(caught.value)
    with pytest.raises(ModelError) as replayed:
        ReplayProvider(path)
    assert f"replay transcript {path} is not a transcript.json written by a run: {problem}" in str(replayed.value)


def test_a_transcript_larger_than_the_limit_is_refused_without_parsing_it(tmp_path) -> None:
    data = shipped()
    data["system"] = "x" * MAX_TRANSCRIPT_BYTES
    path = write(tmp_path, data)
    with pytest.raises(InvalidTranscript, match="larger than 20 MiB"):
        Transcript.load(path)


def test_the_shipped_transcript_loads_and_saves_the_same_document(tmp_path) -> None:
    transcript = Transcript.load(SHIPPED)
    transcript.save(tmp_path / "again.json")
    again = json.loads((tmp_path / "again.json").read_text())
    assert {k: v for k, v in again.items() if k in shipped()} == shipped()
    assert transcript.iterations[1].cells[0].status == "ok" and transcript.turns[0].stop_reason == "tool_use"
