"""Issue 13 end to end: a weekly analysis of live PostgreSQL rows, backfilled over three weeks on a worker.

One PostgreSQL cluster holds both the Prefect server's database and a table of dated orders over five
weeks, each week with its own count. The config has `window: {length: 7d, align: week}`, a weekly cron
and a query templated on the window; its connection URL (with the password) is only in the worker's
environment. `analyst deploy --work-pool`, one `prefect worker start`, `analyst backfill --from --to`:
each of the three runs must read only its own week, say so in its prompt, and leave the password
nowhere a user can read (run folder, flow run logs, artifacts, the worker's log).

The one-line error of a failing connection or a bad query, without the password, is covered by
tests/datasets/test_sql_source.py and test_sql_blocks.py against the same kind of cluster.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
import yaml

from tests.conftest import system_command
from tests.deployments.test_deployments import TRANSCRIPT
from tests.scaleout import processes
from tests.scaleout.postgres import PostgresCluster
from tests.scaleout.prefect_server import PrefectServer
from tests.scaleout.cluster import analyst
from tests.scaleout.test_scaleout import _artifacts_of, _errors_logged
from tests.scaleout.workers import Worker

pytestmark = pytest.mark.slow

POOL = "sql-backfill"
NAME = "weekly-orders"
DATA_DB = "orders_weekly"
URL_VAR = "ORDERS_DB_URL"
FIRST_DAY = "2026-10-19"  # a Monday: five whole weeks of rows, to Sunday 2026-11-22
# The Mondays 07:00 (Paris) from 2026-11-01 to 2026-11-16 and the Monday-to-Sunday week before each;
# the table has a week on each side of these three, so a window off by a day or a week reads other rows.
WEEKS = [("2026-11-02T07:00:00+01:00", "2026-10-26", "2026-11-01"),
         ("2026-11-09T07:00:00+01:00", "2026-11-02", "2026-11-08"),
         ("2026-11-16T07:00:00+01:00", "2026-11-09", "2026-11-15")]
RUNS_TIMEOUT = 600.0


@pytest.fixture(scope="module")
def orders_url(postgres: PostgresCluster) -> str:
    """The URL of a database whose `orders` table has 3*(week+1) + weekday rows per day: each week
    and each day of a week has its own count, so a shifted window changes the count."""
    postgres.create_database(DATA_DB)
    url = postgres.url(DATA_DB, driver="psycopg")
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, day date NOT NULL, amount float8 NOT NULL)")
        conn.execute(f"""
            INSERT INTO orders (day, amount)
            SELECT d::date, n * 1.5
            FROM generate_series(DATE '{FIRST_DAY}', DATE '{FIRST_DAY}' + 34, INTERVAL '1 day') AS d,
                 LATERAL generate_series(1, 3 * (1 + (d::date - DATE '{FIRST_DAY}') / 7)
                                            + extract(isodow FROM d)::int) AS n""")
    return url


def _libpq(url: str) -> str:
    """psycopg takes a libpq URL, without SQLAlchemy's +driver."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def _count_directly(url: str, first: str, last: str) -> int:
    with psycopg.connect(_libpq(url)) as conn:
        return conn.execute("SELECT count(*) FROM orders WHERE day BETWEEN %s AND %s", (first, last)).fetchone()[0]


def _replay_transcript(path: Path) -> None:
    """The demo's transcript cut to two turns: one cell that counts the rows the sandbox got, then a report."""
    demo = json.loads(TRANSCRIPT.read_text())
    first, last = demo["iterations"][0], demo["iterations"][-1]
    first["turn"]["content"][1]["input"]["code"] = \
        "import pandas as pd\nprint(len(pd.read_parquet('data/orders.parquet')))"
    first["cells"] = []
    last["number"], last["turn"]["content"] = 2, [{"type": "text", "text": "# Orders\nCounted the week's orders."}]
    demo["iterations"] = [first, last]
    path.write_text(json.dumps(demo))


def _config(folder: Path) -> Path:
    folder.mkdir(parents=True)
    _replay_transcript(folder / "replay.transcript.json")
    (folder / "orders.schema.yaml").write_text(yaml.safe_dump({
        "schema_type": "dataframe",
        "columns": {"day": {"dtype": "datetime64[ns]"}, "amount": {"dtype": "float64", "greater_than": 0}}}))
    config = folder / f"{NAME}.yaml"
    config.write_text(yaml.safe_dump({
        "name": NAME,
        "schedule": {"cron": "0 7 * * 1", "timezone": "Europe/Paris"},
        "window": {"length": "7d", "align": "week"},
        "datasets": [{
            "name": "orders", "schema": "orders.schema.yaml",
            "sql": {"query": "SELECT day, amount FROM orders "
                             "WHERE day >= '{{ window.start | date('%Y-%m-%d') }}' "
                             "AND day < '{{ window.end | date('%Y-%m-%d') }}' ORDER BY id",
                    "connection": {"env": URL_VAR}}}],  # the URL, password included, is the worker's alone
        "prompt": "Count the orders from {{ window.start | date('%Y-%m-%d') }} "
                  "to {{ window.last_day | date('%Y-%m-%d') }}.",
        "model": {"provider": "replay", "transcript": "replay.transcript.json", "max_iterations": 3},
        "sandbox": {"provider": "local", "timeout": 60},
        "outputs": {"dir": "outputs"},
    }, sort_keys=False))
    return config


@pytest.mark.timeout(RUNS_TIMEOUT + 400)  # + the Prefect server's first start on PostgreSQL (migrations)
def test_a_weekly_sql_analysis_backfilled_on_a_worker_reads_only_its_own_week(
        orders_url: str, prefect_on_postgres: PrefectServer, start_process_workers, tmp_path: Path) -> None:
    from prefect.client.schemas.objects import StateType

    system_command("bwrap", "bubblewrap")
    server, password = prefect_on_postgres, orders_url.split(":")[2].split("@")[0]
    config = _config(tmp_path / "configs")
    assert password not in config.read_text()

    # Neither deploy nor backfill reads the data: they run without the database URL.
    assert f"Work pool '{POOL}' (process): created" in analyst(server, "deploy", config, "--work-pool", POOL)
    [worker] = start_process_workers(server, POOL, count=1, limit=2, env={URL_VAR: orders_url})
    backfill = json.loads(analyst(server, "backfill", config, "--from", "2026-11-01", "--to", "2026-11-16", "--json"))
    assert [r["as_of"] for r in backfill["runs"]] == [as_of for as_of, _, _ in WEEKS]
    run_ids = [UUID(r["flow_run_id"]) for r in backfill["runs"]]
    runs = _wait_for_final_states(server, run_ids, worker)

    failed = [f"{r.name}: {r.state.type.value}: {r.state.message}" for r in runs if r.state.type != StateType.COMPLETED]
    assert not failed, "\n".join(failed) + "\n" + _errors_logged(server, run_ids)
    with server.client() as client:
        for run, (as_of, first, last) in zip(runs, WEEKS):
            expected = _count_directly(orders_url, first, last)
            [run_dir] = (config.parent / "outputs" / NAME).glob(f"*-{str(run.id)[:8]}")
            transcript = json.loads((run_dir / "transcript.json").read_text())
            assert (transcript["status"], transcript["run_time"]["as_of"]) == ("completed", as_of)
            # What the run read: its own week's rows, as many as the database holds for that week ...
            orders = transcript["data"]["orders"]
            assert orders["rows"] == expected, (first, last, orders)
            assert f"day >= '{first}'" in orders["query"] and "***" in orders["connection"]
            # ... which is also what the code in the sandbox counted.
            [cell] = transcript["iterations"][0]["cells"]
            assert cell["stdout"].strip() == str(expected), cell
            # The prompt, as the model was asked, names this week.
            question = f"Count the orders from {first} to {last}."
            assert transcript["prompt"].strip() == question
            assert transcript["messages"][0] == {"role": "user", "content": question}
            # The password is nowhere a user (or whoever reads the Prefect server) can read.
            for file in (f for f in run_dir.rglob("*") if f.is_file()):
                assert password.encode() not in file.read_bytes(), file
            logs = client.read_logs(log_filter=_logs_of(run.id))
            assert logs and not [log.message for log in logs if password in log.message]
            artifacts = _artifacts_of(client, run.id)
            assert artifacts and not [a.key for a in artifacts if password in f"{a.data} {a.description}"]
    # Weeks with different counts: equal counts would not tell one week from another.
    assert len({_count_directly(orders_url, first, last) for _, first, last in WEEKS}) == len(WEEKS)
    assert password not in worker.log.read_text(errors="replace")


def _logs_of(run_id: UUID):
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    return LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))


def _wait_for_final_states(server: PrefectServer, run_ids: list[UUID], worker: Worker):
    """The runs in the order of ``run_ids``, once all are final."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    only_these = FlowRunFilter(id=FlowRunFilterId(any_=run_ids))
    deadline = time.monotonic() + RUNS_TIMEOUT
    with server.client() as client:
        while True:
            runs = {r.id: r for r in client.read_flow_runs(flow_run_filter=only_these, limit=len(run_ids))}
            if len(runs) == len(run_ids) and all(r.state and r.state.is_final() for r in runs.values()):
                return [runs[i] for i in run_ids]
            assert worker.proc.poll() is None, f"{worker.name} exited:\n{processes.tail(worker.log)}"
            if time.monotonic() > deadline:
                states = sorted(f"{r.name} {r.id}: {r.state.name if r.state else None}" for r in runs.values())
                pytest.fail(f"runs not final after {RUNS_TIMEOUT:.0f} s:\n" + "\n".join(states) + "\n"
                            + processes.tail(worker.log, 80))
            time.sleep(0.5)
