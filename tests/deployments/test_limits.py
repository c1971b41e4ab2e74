"""The cap on live sandboxes (Prefect global concurrency limit 'sandboxes') against the session's real server:
the run's slot, `analyst limits`, and `concurrency.sandboxes` applied by `analyst deploy`."""

from __future__ import annotations

import json

import logging
import threading
from collections.abc import Iterator

import pytest

from deployments import read_limit_state
from tasks.prefect.sandbox_slots import SANDBOX_LIMIT, SandboxSlot
from tests.deployments.test_deployments import copy_demo


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def slot_log() -> Iterator[Captured]:
    """What SandboxSlot logs outside a run (Prefect's logging set-up replaces the root handlers caplog uses)."""
    logger, handler = logging.getLogger("analyst.sandbox_slots"), Captured()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def no_limit_after(prefect_api, cli) -> Iterator[None]:
    """The server is shared by the session: leave no 'sandboxes' limit behind."""
    try:
        yield
    finally:
        cli("limits", "remove", SANDBOX_LIMIT)


def test_without_a_limit_a_slot_is_not_needed_and_none_is_created(prefect_api, no_limit_after, slot_log) -> None:
    with SandboxSlot() as slot:
        assert read_limit_state(SANDBOX_LIMIT) is None
    assert slot.acquire() is False
    slot.release()
    assert "Sandboxes are not capped (no active global concurrency limit 'sandboxes'" in slot_log.text


def test_a_second_slot_waits_says_so_and_gets_it_when_the_first_is_released(prefect_api, cli, no_limit_after,
                                                                            slot_log) -> None:
    assert cli("limits", "set", SANDBOX_LIMIT, 1).exit_code == 0
    first = SandboxSlot()
    assert first.acquire() is True
    assert read_limit_state(SANDBOX_LIMIT).in_use == 1

    second, got = SandboxSlot(), threading.Event()
    waiter = threading.Thread(target=lambda: (second.acquire(), got.set()), daemon=True)
    waiter.start()
    for _ in range(600):  # until it says it waits (it has not got the slot: the first holds the only one)
        if "Waiting for a sandbox slot" in slot_log.text:
            break
        got.wait(0.1)
    assert "Waiting for a sandbox slot: the global concurrency limit 'sandboxes' allows 1 sandbox(es) at once " \
           "and 1 are in use by other runs" in slot_log.text
    assert not got.is_set() and read_limit_state(SANDBOX_LIMIT).in_use == 1

    first.release()
    assert got.wait(120), "the second slot was never granted"
    assert "Got a sandbox slot of 'sandboxes' after" in slot_log.text
    assert read_limit_state(SANDBOX_LIMIT).in_use == 1
    second.release()
    assert read_limit_state(SANDBOX_LIMIT).in_use == 0
    second.release()  # twice is harmless


def test_limits_set_show_remove(prefect_api, cli, no_limit_after) -> None:
    result = cli("limits", "set", SANDBOX_LIMIT, 3)
    assert result.exit_code == 0 and "sandboxes: at most 3 at once (created); 0 in use now." in result.output
    assert "sandboxes: at most 2 at once (was 3)" in cli("limits", "set", SANDBOX_LIMIT, 2).output
    shown = cli("limits", "show")
    assert shown.exit_code == 0
    [row] = [line for line in shown.output.splitlines() if line.startswith("sandboxes")]
    assert row.split()[-2:] == ["2", "0"]  # at most, in use
    [listed] = [limit for limit in json.loads(cli("limits", "show", "--json").stdout)["limits"]
                if limit["name"] == SANDBOX_LIMIT]
    assert (listed["limit"], listed["active"], listed["in_use"]) == (2, True, 0)
    removed = cli("limits", "remove", SANDBOX_LIMIT)
    assert "sandboxes: removed (it was 2); not capped any more." in removed.output
    assert read_limit_state(SANDBOX_LIMIT) is None
    assert "not capped" in cli("limits", "show").output
    assert "there was no such limit" in cli("limits", "remove", SANDBOX_LIMIT).output


def test_limits_refuse_an_unknown_name_or_zero_before_any_server(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ANALYST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    typo = cli("limits", "set", "sandbox", 2)
    assert typo.exit_code == 1 and "unknown limit 'sandbox': did you mean 'sandboxes'?" in typo.output
    zero = cli("limits", "set", SANDBOX_LIMIT, 0)
    assert zero.exit_code == 1 and "analyst limits remove sandboxes" in zero.output
    assert not (tmp_path / "home").exists()


@pytest.mark.slow
def test_deploy_applies_the_configs_sandbox_cap(prefect_api, cli, tmp_path, no_limit_after) -> None:
    config = copy_demo(tmp_path, "capped-sales")
    config.write_text(config.read_text() + "\nconcurrency:\n  runs: 2\n  sandboxes: 4\n")
    result = cli("deploy", config)
    assert result.exit_code == 0, result.output
    assert f"Sandboxes (all analyses): at most 4 at once, from concurrency.sandboxes in {config}." in result.output
    assert "runs at once: 2; more wait" in result.output  # not a terminal: plain key: value lines
    assert read_limit_state(SANDBOX_LIMIT).limit == 4
    assert "at most 4 at once (unchanged)" in cli("deploy", config).output

    shown = cli("limits", "show").output
    [row] = [line for line in shown.splitlines() if line.startswith("analyze/capped-sales")]
    assert row.split()[-2:] == ["2", "0"]
