"""The history of an analysis: the ``<name>-history`` artifact, the trend chart, and ``analyst history``.

Two "hosts" are two outputs folders that share nothing but the Prefect server.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from uuid import uuid4

import pytest

from tasks.reports.trends import TRENDS_CHART
from tasks.run_history import HISTORY_FILE, RunRecord, append_record
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS
from tests.prefect.test_artifacts import read_latest  # the newest version of an artifact key

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"
TRANSCRIPT = ROOT / "configs" / "retail-sales.transcript.json"
# Read as a terminal would show it: an escape that sets the window title, and brackets rich would read as markup.
HOSTILE = "\x1b]0;pwned\x07[bold red]east[/bold red]"


def demo_named(folder: Path, name: str, outputs: Path) -> Path:
    """The demo config as another analysis (the session's server holds other tests' retail-sales history)."""
    shutil.copytree(DEMO.parent, folder, ignore=shutil.ignore_patterns("outputs", "*.json"))
    config = folder / "retail-sales.yaml"
    config.write_text(config.read_text().replace("name: retail-sales", f"name: {name}")
                      .replace("dir: ../outputs", f"dir: {outputs}"))
    return config


@pytest.mark.slow
def test_runs_on_two_hosts_sharing_only_the_server_make_one_history(prefect_api, cli, tmp_path) -> None:
    from flows.analysis import analyze

    name = f"history-{uuid4().hex[:8]}"
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    config = demo_named(tmp_path / "demo", name, host_a)

    first = analyze(str(config), replay=str(TRANSCRIPT))
    second = analyze(str(config), {"outputs.dir": str(host_b)}, replay=str(TRANSCRIPT))

    assert first["status"] == second["status"] == "completed"
    assert [p.name for p in (host_b / name).iterdir() if p.is_dir()] == [Path(second["run_dir"]).name]
    rows = json.loads(read_latest(f"{name}-history").data)
    assert [r["flow_run"] for r in rows] == [second["flow_run_id"], first["flow_run_id"]]  # newest first
    for row in rows:
        assert {k: row[k] for k in DEMO_RESULTS} == DEMO_RESULTS
        assert row["status"] == "completed" and row["time"] and row["cost_usd"] == 0
    assert len((host_b / name / HISTORY_FILE).read_text().splitlines()) == 1  # its own run; the server had the rest

    # The trend chart: not after one run, in the reports and an artifact after two.
    assert not (Path(first["run_dir"]) / TRENDS_CHART).exists()
    run_dir = Path(second["run_dir"])
    assert (run_dir / TRENDS_CHART).is_file()
    assert f"## Trends\n\n![trends]({TRENDS_CHART})" in (run_dir / "report.md").read_text()
    assert "## Trends\n\n![trends](data:image/png;base64," in read_latest(f"{name}-report").data
    trends = read_latest(f"{name}-trends")
    assert trends.type == "markdown" and "](data:image/png;base64," in trends.data

    # analyst history: by name (the server alone), and by config (host a's folders as well).
    shown = cli("history", name)
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("completed") == 2 and shown.output.count("3,385,047") == 2
    for run in (first, second):
        assert run["flow_run_id"][:8] in shown.output
    assert json.loads(cli("history", name, "--json").stdout) == rows
    [newest] = json.loads(cli("history", config, "--json", "--runs", "1").stdout)
    assert newest == rows[0]


@pytest.mark.slow
def test_history_prints_what_the_server_holds_as_plain_text(prefect_api, cli) -> None:
    from prefect import flow

    from tasks.prefect.history import publish_history

    name = f"history-{uuid4().hex[:8]}"
    flow(name="publish-history-test")(publish_history)(name, [
        RunRecord("bbbbbbbb-1", "2026-11-09T07:00:00+00:00", "unfinished"),
        RunRecord("aaaaaaaa-1", "2026-11-02T07:00:00+00:00", "completed", window="2026-10-26..2026-11-01",
                  cost_usd=0.25, results={"best_region": HOSTILE, "total_revenue": 1250000.0}, alerts=["drop"]),
    ])
    shown = cli("history", name)
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.output and "\x07" not in shown.output
    assert "[bold red]east[/bold red]" in shown.output  # literally, never as markup
    for text in ("2026-11-02 07:00", "2026-10-26..2026-11-01", "$0.2500", "1,250,000", "drop", "unfinished"):
        assert text in shown.output, text
    assert "no runs" in cli("history", f"{name}-never-ran").output.lower()


def test_a_name_that_is_not_a_slug_nor_a_file_is_one_line_exit_2(cli) -> None:
    result = cli("history", "Not A Slug")
    assert result.exit_code == 2
    assert result.output.strip() == "error: Not A Slug: neither a config file nor an analysis name (a slug such as " \
                                    "retail-sales)"


def test_without_the_server_a_name_fails_in_one_line_and_a_config_lists_its_run_folders(cli, tmp_path,
                                                                                       monkeypatch) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    monkeypatch.setenv("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "false")  # the command sets it: undone after
    name = f"history-{uuid4().hex[:8]}"
    config = demo_named(tmp_path / "demo", name, tmp_path / "out")
    append_record(tmp_path / "out" / name, RunRecord("aaaaaaaa-1", "2026-11-02T07:00:00+00:00", "completed",
                                                     results={"best_region": HOSTILE}))

    by_name = cli("history", name)
    assert by_name.exit_code == 1 and "Traceback" not in by_name.output
    assert by_name.output.startswith(f"error: could not read {name}'s history from the Prefect server at "
                                     f"http://127.0.0.1:{port}/api (ConnectError")
    by_config = cli("history", config)
    assert by_config.exit_code == 0, by_config.output
    assert "warning: could not read" in by_config.output and "listing the runs in its run folders only" in \
        by_config.output
    assert "[bold red]east[/bold red]" in by_config.output and "\x1b" not in by_config.output
    monkeypatch.undo()  # the command pointed this process's Prefect at the dead port: point it back
    import prefect.context

    prefect.context.refresh_global_settings_context()


@pytest.mark.slow
def test_a_run_reads_the_servers_history_in_one_request(prefect_api, tmp_path, monkeypatch) -> None:
    """known_runs is on the way to the run's first model request: one request, on the flow run's own client."""
    from prefect import flow
    from prefect.logging.handlers import APILogHandler

    from cli.local_server import use_api_url
    from tasks.config import load_config
    from tasks.prefect.history import known_runs, publish_history
    from tests.fakes.counting_proxy import CountingProxy

    name = f"history-{uuid4().hex[:8]}"
    for week in range(1, 4):  # three versions of the table
        flow(name="publish-history-test")(publish_history)(
            name, [RunRecord(f"run-{week}", f"2026-11-{week:02d}T07:00:00+00:00", "completed")])
    loaded = load_config(demo_named(tmp_path / "demo", name, tmp_path / "out"))

    seen: list[str] = []
    requests: list[str] = []

    @flow(name="known-runs-test")
    def read_history() -> list[RunRecord]:
        before = len(seen)
        records = known_runs(loaded)
        requests.extend(r for r in seen[before:] if "/logs" not in r)  # logs are sent from their own thread
        return records

    with CountingProxy(prefect_api, seen) as proxy:
        monkeypatch.setenv("PREFECT_API_URL", proxy.url)
        use_api_url(proxy.url, local=True)
        try:
            records = read_history()
        finally:
            APILogHandler().flush()  # through the proxy, while it is there
            use_api_url(prefect_api, local=True)
    assert [r.flow_run_id for r in records] == ["run-3", "run-2", "run-1"]
    assert requests == ["POST /api/artifacts/filter"]
