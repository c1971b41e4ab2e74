"""The analysis, in layers; each imports only the ones below it.

1. ``tasks/prefect/``: everything that touches Prefect. The flow's step tasks (configure, validate,
   provision, iterate, collect), ``PrefectModel`` (persisted model turns) and its cache policy, sandbox
   slots, Secret blocks, artifacts, the crash hook, schedules.
2. ``tasks/agent/``: the agentic loop as plain code (``AnalysisLoop.run``), resume, progress events.
3. ``tasks/models/``, ``tasks/sandbox/``: the backends, one interface each; ``tasks/datasets/``,
   ``tasks/reports/``: validation and the report files.
4. ``tasks/config/``, ``tasks/transcript.py``, ``tasks/errors.py`` and the other small modules: shared by all.

Everything but ``tasks/prefect/`` imports and is tested without Prefect (tests/test_prefect_boundary.py).
"""
