"""Everything that touches Prefect lives in tasks/prefect/: the rest of tasks/ imports without it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Prefect blocked before anything is imported: ``import prefect`` anywhere then raises ImportError.
BLOCKED_IMPORTS = """
import importlib, sys, traceback
sys.modules["prefect"] = None
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError:
        print(f"{name} imports Prefect:")
        traceback.print_exc(file=sys.stdout)
        sys.exit(1)
"""


def domain_modules() -> list[str]:
    modules = []
    for path in sorted((ROOT / "tasks").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[1] == "prefect":
            continue
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_the_domain_modules_are_found() -> None:
    modules = domain_modules()
    assert {"tasks", "tasks.agent.loop", "tasks.models.credentials", "tasks.config.schema"} <= set(modules)
    assert not [m for m in modules if m.startswith("tasks.prefect")]


def test_every_domain_module_imports_without_prefect() -> None:
    result = subprocess.run([sys.executable, "-c", BLOCKED_IMPORTS, *domain_modules()], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_module_that_imports_prefect_is_named(tmp_path: Path) -> None:
    (tmp_path / "leaky.py").write_text("import prefect\n")
    result = subprocess.run([sys.executable, "-c", BLOCKED_IMPORTS, "leaky"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout.startswith("leaky imports Prefect:"), result.stdout
