"""A throwaway PostgreSQL cluster for the system tests: Debian's binaries, a temporary folder, a free
port on 127.0.0.1, its Unix socket in that folder; stopped and deleted at the end.

initdb and postgres refuse to run as root, and tests and CI run as root: there they run as the
``postgres`` system user the Debian package creates (``nobody`` where it does not exist), in a
folder under /tmp that user owns. As any other user they run as that user.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import system_command
from tests.scaleout.processes import free_port

SUPERUSER = "analyst"


@dataclass(frozen=True)
class PostgresCluster:
    host: str
    port: int
    user: str
    password: str
    socket_dir: Path
    log: Path

    def url(self, database: str, driver: str = "asyncpg") -> str:
        """The SQLAlchemy URL Prefect's server takes (PREFECT_SERVER_DATABASE_CONNECTION_URL)."""
        return f"postgresql+{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def postmaster_pid(self) -> int:
        """The server's main process, the parent of every connection's backend."""
        return int((self.socket_dir / "data" / "postmaster.pid").read_text().split()[0])

    def create_database(self, name: str) -> None:
        """``createdb``, over TCP with the password, as a remote client would."""
        _run([system_command("createdb", "postgresql"), "-h", self.host, "-p", str(self.port), "-U", self.user,
              name], env={**os.environ, "PGPASSWORD": self.password})


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """initdb + ``pg_ctl start`` on a free port; ``pg_ctl stop`` and the folder removed on exit."""
    initdb, pg_ctl = system_command("initdb", "postgresql"), system_command("pg_ctl", "postgresql")
    owner = _unprivileged_user() if os.geteuid() == 0 else None
    # As root, under /tmp itself: the server's user must reach the folder (pytest's are root-only).
    base = Path(tempfile.mkdtemp(prefix="analyst-pg-", dir="/tmp" if owner else None))
    try:
        data, log, pwfile = base / "data", base / "postgres.log", base / "pwfile"
        password = secrets.token_urlsafe(16)
        pwfile.write_text(password + "\n")
        if owner:
            for path in (base, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        cluster = PostgresCluster("127.0.0.1", free_port(), SUPERUSER, password, base, log)
        _run([initdb, "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale",
              "--auth-local=trust", "--auth-host=scram-sha-256"], owner)
        pwfile.unlink()
        options = (f"-p {cluster.port} -k {base} -c listen_addresses={cluster.host}"
                   # a test database: durability is not what is tested, and fsync costs the shared disk
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _run([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], owner)
        try:
            yield cluster
        finally:
            _run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"], owner)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as")


def _run(argv: list[str], owner: pwd.struct_passwd | None = None, env: dict[str, str] | None = None) -> None:
    as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if owner else {}
    done = subprocess.run(argv, env=env, cwd="/", capture_output=True, text=True, check=False, **as_user)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
