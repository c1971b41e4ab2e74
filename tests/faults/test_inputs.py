"""Fault matrix, Input rows: configs and datasets a user (or an attacker writing a config) can get
wrong. Each is refused with one line naming the file, the key and the fix, before any server,
sandbox or model is started; a schema that does not match the data fails the run with the table of
failures, and nothing is sent to Claude."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks.config import load_config
from tasks.config.yaml_guard import MAX_CONFIG_BYTES
from tasks.errors import ConfigError
from tasks.sandbox.local import LocalSandbox

from .conftest import CONFIG, artifact_keys, latest_flow_run

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
name: bomb
prompt: *i
datasets: *i
"""


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(p) for p in caught.value.problems]


# --- the config file itself ---------------------------------------------------------------------------


@pytest.mark.timeout(30)  # expanding it would take hours and all the memory: refused at its first anchor
def test_a_yaml_alias_bomb_is_refused(cli, analysis) -> None:
    analysis.write_text(BILLION_LAUGHS)
    result = cli("validate", analysis)
    assert result.exit_code == 2
    assert f"{analysis}: line 1: YAML anchors and aliases (&name, *name) are not allowed" in result.output
    assert "Traceback" not in result.output


@pytest.mark.timeout(30)
def test_a_recursive_alias_is_refused(analysis) -> None:
    analysis.write_text(CONFIG + "tags: &loop [*loop]\n")
    [line] = problems(analysis)
    assert f"line {CONFIG.count(chr(10)) + 1}: YAML anchors and aliases" in line


def test_a_single_alias_is_refused_too(analysis) -> None:
    analysis.write_text(CONFIG.replace("name: faults", "name: &n faults") + "description: *n\n")
    [line] = problems(analysis)
    assert line.startswith(f"{analysis}: line 1: YAML anchors and aliases") and "write the value out in full" in line


@pytest.mark.timeout(30)
def test_a_100_mb_config_is_refused_before_it_is_read(cli, analysis) -> None:
    with analysis.open("r+b") as handle:  # sparse: 100 MB long, nothing written to the disk
        handle.truncate(100 * 1024**2)
    result = cli("validate", analysis)
    assert result.exit_code == 2
    assert f"{analysis}: the file is larger than 1024 KiB, the most a config may be" in result.output


def test_a_config_just_over_the_limit_is_refused_by_its_size_not_its_content(analysis) -> None:
    analysis.write_text(CONFIG + "description: " + "x" * MAX_CONFIG_BYTES + "\n")
    [line] = problems(analysis)
    assert "larger than 1024 KiB" in line


# --- dataset names and paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../escape", "sub/sales", "..", "a\\b"])
def test_a_dataset_name_that_is_a_path_is_refused(cli, analysis, name) -> None:
    analysis.write_text(CONFIG.replace("  - name: sales", f"  - name: '{name}'"))
    result = cli("validate", analysis)
    assert result.exit_code == 2, result.output
    assert f"{analysis}: datasets[0].name: '{name}' is a path, not a name" in result.output.replace("\\\\", "\\")
    assert "put where the file is under 'path'" in result.output


def test_a_dataset_path_to_a_device_or_pipe_is_refused(analysis) -> None:
    fifo = analysis.parent / "pipe.csv"
    os.mkfifo(fifo)
    (analysis.parent / "zero.csv").symlink_to("/dev/zero")
    for target in ("pipe.csv", "zero.csv"):
        analysis.write_text(CONFIG.replace("path: sales.csv", f"path: {target}"))
        [line] = problems(analysis)
        assert "datasets[0].path: not a regular file" in line, line


@pytest.mark.skipif(not Path("/usr/bin/bwrap").exists(), reason="bubblewrap is not installed")
def test_a_dataset_that_is_a_symlink_out_of_its_folder_is_copied_not_linked(cli, analysis, tmp_path) -> None:
    """A symlink to a file elsewhere is followed when the data is read, as a path written out would
    be (``path: /elsewhere/x.csv`` is allowed): the sandbox gets a copy of the bytes, never the link,
    so code in the sandbox cannot reach or change the file it points to."""
    outside = tmp_path / "elsewhere" / "sales.csv"
    outside.parent.mkdir()
    outside.write_text((analysis.parent / "sales.csv").read_text())
    (analysis.parent / "sales.csv").unlink()
    (analysis.parent / "sales.csv").symlink_to(outside)
    assert cli("validate", analysis).exit_code == 0

    loaded = load_config(analysis)
    from tasks.datasets import dataset_file

    with LocalSandbox(loaded.config.sandbox, work_root=tmp_path / "work", warm_imports=()) as sandbox:
        with dataset_file(loaded.config.datasets[0], loaded.base_dir) as local:
            sandbox.upload(local, "sales.csv")
        result = sandbox.run_code("import os\n"
                                  "print(os.path.islink('data/sales.csv'), os.path.realpath('data/sales.csv'))\n"
                                  "_ = open('data/sales.csv', 'a').write('west,1.0\\n')")
        assert result.stdout == "False /sandbox/data/sales.csv\n", (result.stdout, result.error)
    assert "west" not in outside.read_text()  # the host's file is untouched


# --- the schema and the data disagree ----------------------------------------------------------------


MISMATCHED = CONFIG.replace("        revenue: {dtype: float64}",
                            "        revenue: {dtype: int64}\n        units: {dtype: int64}")


def test_a_schema_that_does_not_match_the_columns_is_a_table_of_failures(cli, analysis) -> None:
    analysis.write_text(MISMATCHED)
    result = cli("validate", analysis)
    assert result.exit_code == 1
    table = result.output
    assert "units" in table and "column_in_dataframe" in table  # a column the data does not have
    assert "revenue" in table and "dtype('int64')" in table and "Float64" in table  # a column of another type
    assert "Traceback" not in table


@pytest.mark.slow
def test_a_run_whose_schema_does_not_match_fails_before_any_sandbox_or_model(run, anthropic_api, analysis) -> None:
    mismatched = analysis.with_name("schema-mismatch.yaml")  # its own flow run name, to find the run in Prefect
    mismatched.write_text(MISMATCHED.replace("name: faults", "name: schema-mismatch"))

    outcome = run(config=mismatched, as_json=False)

    assert outcome.exit_code == 1
    assert "data invalid" in outcome.output and "units" in outcome.output and "column_in_dataframe" in outcome.output
    assert anthropic_api.requests == []  # nothing was sent to Claude; no sandbox was made (checked by `run`)
    found = latest_flow_run("schema-mismatch")
    assert found.state.is_failed() and "data invalid" in found.state.message
    assert f"/runs/flow-run/{found.id}" in outcome.output.replace("\n", "")  # the link, though it failed early
    assert {"schema-mismatch-validation", "schema-mismatch-validation-failures"} <= artifact_keys(str(found.id))
