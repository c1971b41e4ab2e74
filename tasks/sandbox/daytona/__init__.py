"""The Daytona provider: the sandbox interface in a Daytona cloud sandbox (``sandbox.py``), run
statefully or statelessly (``stateful.py``, ``stateless.py``), and the labels that find leftovers
(``cleanup.py``)."""

from tasks.sandbox.daytona.sandbox import DaytonaSandbox

__all__ = ["DaytonaSandbox"]
