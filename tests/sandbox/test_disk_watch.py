"""The disk watcher on its own: when it acts, and what it counts against a session it did not act on."""

from __future__ import annotations

from tasks.sandbox.local.disk_quota import DiskWatch

MiB = 1024**2


def test_what_a_killed_session_wrote_as_it_died_does_not_get_the_next_one_killed(tmp_path) -> None:
    kills: list[bool] = []
    watch = DiskWatch([tmp_path], 8 * MiB, kills.append, cell_running=lambda: False)
    (tmp_path / "a.bin").write_bytes(b"x" * (12 * MiB))
    watch.check()  # over, and no cell runs: the kernel's processes are killed
    assert kills == [True]

    (tmp_path / "b.bin").write_bytes(b"x" * (4 * MiB))  # the write under way when the signal came
    watch.rebase()  # those processes are gone; a new kernel starts
    (tmp_path / "kernel.json").write_bytes(b"{}" * 500)  # its connection file
    watch.check()
    assert kills == [True]

    (tmp_path / "c.bin").write_bytes(b"x" * (4 * MiB))  # the new session writes on, still over
    watch.check()
    assert kills == [True, True]
