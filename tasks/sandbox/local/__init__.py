"""The local provider: a stateful ipykernel on this machine, confined by bubblewrap, a seccomp filter,
an unprivileged uid and cgroup limits (``sandbox.py`` puts the parts together)."""

from tasks.sandbox.local.sandbox import LocalSandbox

__all__ = ["LocalSandbox"]
