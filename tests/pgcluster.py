"""A private PostgreSQL cluster for tests and benchmarks.

:class:`PgCluster` runs ``initdb`` + ``pg_ctl`` in a fresh temporary directory on
a free port of 127.0.0.1 and removes it all on :meth:`PgCluster.stop`. PostgreSQL
refuses to run as root, so when the tests run as root the server runs as the
``postgres`` OS user (the Debian package creates it). :func:`unavailable_reason`
says why a cluster cannot run here (for ``pytest.skip``), or ``None``.

Authentication is real: ``scram-sha-256`` over TCP for every role, so per-role
passwords are checked exactly as in production.

    with PgCluster() as pg:
        url = pg.create_admin()   # a CREATEROLE role owning a fresh database
        ...
        pg.restart()
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

#: Settings for a throwaway cluster: small, quick to start, durable enough for
#: restart tests (fsync stays on so a restart test sees what a crash would).
DEFAULT_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "50",
    "shared_buffers": "128MB",
    "max_wal_size": "2GB",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb``/``pg_ctl``/``postgres``: from ``PATH``, or the
    newest ``/usr/lib/postgresql/<version>/bin`` (Debian does not put them on PATH)."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def _server_user() -> str | None:
    """The OS user the server runs as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    return "postgres"


def unavailable_reason() -> str | None:
    """Why a private cluster cannot run here, or ``None`` when it can."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return (
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); "
            "./dev.sh setup installs it"
        )
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (bin_dir / tool).exists():
            return f"PostgreSQL is incomplete: {bin_dir / tool} is missing"
    user = _server_user()
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f'running as root and there is no "{user}" OS user to run PostgreSQL as'
    return None


class PgCluster:
    """A private PostgreSQL server in a temporary directory (see the module docstring)."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        bin_dir = find_bin_dir()
        assert bin_dir is not None
        self.bin_dir = bin_dir
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.port = _free_port()
        self.host = "127.0.0.1"
        self.superuser = "postgres"
        self.superuser_password = secrets.token_hex(16)
        self.user = _server_user()
        self.base = Path(tempfile.mkdtemp(prefix="pushstream-pg-"))
        self.data_dir = self.base / "data"
        self.log_path = self.base / "server.log"
        self.running = False
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self._initdb()

    # -- process control -------------------------------------------------

    def _run(self, args: list[str], timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs["user"] = self.user
            kwargs["group"] = pwd.getpwnam(self.user).pw_gid
            kwargs["extra_groups"] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, check=check, env=env, cwd=self.base, **kwargs
        )

    def _initdb(self) -> None:
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        pwfile.chmod(0o600)
        result = self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=False,
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        conf = "\n".join(f"{key} = '{value}'" for key, value in self.settings.items())
        with (self.data_dir / "postgresql.conf").open("a") as f:
            f.write(
                f"\n# pushstream test cluster\nport = {self.port}\nunix_socket_directories = '{self.base}'\n{conf}\n"
            )

    def start(self, timeout: float = 60.0) -> PgCluster:
        """Starts the server and waits until it accepts connections."""
        result = self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                "60",
                "start",
            ],
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{result.stdout}\n{result.stderr}\n{self.log()}")
        self.running = True
        # A test run interrupted before its fixtures' teardown still stops the server.
        atexit.register(self.destroy)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stops the server (``fast``: disconnects clients, ``immediate``: like a crash)."""
        if not self.running:
            return
        self._run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop"], check=False
        )
        self.running = False

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stops the server and removes its directory."""
        atexit.unregister(self.destroy)
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- URLs and roles --------------------------------------------------

    def url(self, user: str | None = None, password: str | None = None, database: str = "postgres") -> str:
        """A libpq URL of this server (the superuser's unless ``user`` is given)."""
        if user is None:
            user, password = self.superuser, self.superuser_password
        auth = user if password is None else f"{user}:{password}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"

    def execute(self, *statements: str, database: str = "postgres") -> list[tuple[Any, ...]]:
        """Runs statements as the superuser (autocommit); returns the last one's rows."""
        import adbc_driver_postgresql.dbapi as pg

        rows: list[tuple[Any, ...]] = []
        with pg.connect(self.url(database=database), autocommit=True) as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                rows = cur.fetchall() if cur.description else []
        return rows

    def create_admin(self, role: str = "pushstream_admin", database: str | None = None) -> str:
        """Creates a non-superuser admin (``CREATEROLE``) owning a new database, the
        way an operator would set pushstream up; returns its URL."""
        database = database or role
        password = secrets.token_hex(16)
        self.execute(
            f"CREATE ROLE {role} LOGIN CREATEROLE PASSWORD '{password}'",
            f"CREATE DATABASE {database} OWNER {role}",
        )
        return self.url(role, password, database)


@contextlib.contextmanager
def cluster(settings: dict[str, str] | None = None) -> Any:
    """``with cluster() as pg:`` — a started :class:`PgCluster`, destroyed afterwards."""
    pg = PgCluster(settings)
    try:
        yield pg.start()
    finally:
        pg.destroy()
