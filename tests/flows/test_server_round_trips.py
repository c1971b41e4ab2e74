"""What a run asks the Prefect server once per run: nothing it already knows, nothing twice."""

from __future__ import annotations

import pytest

from tasks.prefect.validate import DataInvalid
from tests.flows.conftest import demo_with_an_invalid_row

pytestmark = pytest.mark.slow


def test_a_run_never_asks_for_the_default_result_storage_and_reads_the_sandbox_cap_once(
        prefect_api, monkeypatch, tmp_path) -> None:
    """Invalid data: the run stops after validation, by which time its sandbox was started (and torn down)."""
    from prefect.logging.handlers import APILogHandler

    from cli.local_server import use_api_url
    from flows.analysis import analyze
    from tests.fakes.counting_proxy import CountingProxy

    seen: list[str] = []
    with CountingProxy(prefect_api, seen) as proxy:
        monkeypatch.setenv("PREFECT_API_URL", proxy.url)
        use_api_url(proxy.url, local=True)
        try:
            with pytest.raises(DataInvalid):
                analyze(str(demo_with_an_invalid_row(tmp_path / "bad")), {"outputs.dir": str(tmp_path / "out")})
        finally:
            APILogHandler().flush()  # through the proxy, while it is there
            use_api_url(prefect_api, local=True)
    assert any(r.startswith("POST /api/flow_runs/") for r in seen)  # the run did go through the proxy
    assert [r for r in seen if r.startswith("GET /api/admin/storage")] == []
    assert [r for r in seen if r.startswith("GET /api/v2/concurrency_limits/")] == [
        "GET /api/v2/concurrency_limits/sandboxes"]
