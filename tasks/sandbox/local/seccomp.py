"""The syscall filter bubblewrap installs before it starts the kernel (``--seccomp FD``).

Everything is allowed except what a data analysis never needs, after the default profile of
container runtimes (Docker's): kernel modules, kexec, mounts, bpf, perf, userfaultfd, the kernel
keyring, ptrace, new namespaces, io_uring, reboot, swap, the clock, and their like. A refused call
fails with ``EPERM``; nothing is killed. ``clone`` is refused only with a ``CLONE_NEW*`` flag, so
fork and threads work; ``clone3`` (whose flags sit in memory a filter cannot read) returns ``ENOSYS``,
on which glibc falls back to ``clone``.

The filter is compiled by libseccomp (through ``pyseccomp``), never written by hand.
"""

from __future__ import annotations

import errno
import functools
import os
import tempfile

from tasks.errors import SandboxError

INSTALL_HINT = (
    "the local sandbox needs libseccomp to filter the analysis code's system calls, and it is not "
    "installed. Install it with `sudo apt-get install libseccomp2` (Fedora: `sudo dnf install libseccomp`), "
    "or set `sandbox: {isolation: none}` in the config to run without isolation (not recommended)."
)

REFUSED = (
    # kernel modules, kexec, reboot, swap, accounting, quotas
    "init_module", "finit_module", "delete_module", "create_module", "get_kernel_syms", "query_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
    "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "syslog", "vhangup", "lookup_dcookie",
    # mounts and file handles (which reach files outside the mounts)
    "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "name_to_handle_at", "open_by_handle_at",
    # namespaces
    "unshare", "setns",
    # kernel attack surface an analysis has no use for
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "add_key", "request_key", "keyctl", "fanotify_init", "iopl", "ioperm", "vm86", "vm86old",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # the host's clock and names
    "settimeofday", "clock_settime", "clock_settime64", "clock_adjtime", "clock_adjtime64", "adjtimex",
    "stime", "sethostname", "setdomainname",
)
NEW_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)


@functools.cache
def compiled_filter() -> bytes:
    """The filter as BPF bytes for ``bwrap --seccomp``; SandboxError when libseccomp is missing."""
    try:
        import pyseccomp as seccomp  # noqa: PLC0415 - libseccomp may be missing: one clear error below

        rules = seccomp.SyscallFilter(seccomp.ALLOW)
    except (ImportError, OSError, RuntimeError, AttributeError) as exc:
        raise SandboxError(f"{INSTALL_HINT} ({exc})") from exc
    refuse = seccomp.ERRNO(errno.EPERM)
    for name in REFUSED:
        try:
            rules.add_rule(refuse, name)
        except (ValueError, RuntimeError, OSError):
            pass  # not a syscall on this architecture
    for flag in NEW_NAMESPACE_FLAGS:
        rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as out:
        rules.export_bpf(out)
        out.seek(0)
        return out.read()


def filter_fd() -> int:
    """A memfd holding the filter; bwrap reads it at each start (rewind it in the child before exec)."""
    data = compiled_filter()
    fd = os.memfd_create("analyst-seccomp", os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
