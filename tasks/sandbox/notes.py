"""What a sandbox says about a run besides the code's own output, in the same words for every provider."""

from __future__ import annotations

STATE_GONE = "variables, imports and loaded data are gone"


def timed_out_restarted(timeout: float) -> str:
    return (f"the code ran past its {timeout:g} s time limit and did not stop when interrupted; the Python "
            f"session was restarted: {STATE_GONE}")


def timed_out_interrupted(timeout: float) -> str:
    return (f"the code ran past its {timeout:g} s time limit and was interrupted "
            "(variables defined before are kept)")
