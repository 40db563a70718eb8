"""A throwaway PostgreSQL cluster for the tests: initdb, start, create databases, stop, remove.

The server binaries come from the Debian ``postgresql`` package (``make test`` installs it
through ``scripts/system-deps.sh``). PostgreSQL refuses to run as root, so when the tests run
as root every server command runs as the ``postgres`` user (``runuser``) and the cluster's
directory is handed to that user. Authentication is ``trust``: the cluster listens on
127.0.0.1 only, on a free port, and lives in a temporary directory removed at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

INSTALL_HINT = (
    "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb). "
    "`make test` installs them (scripts/system-deps.sh: apt-get install postgresql)."
)
START_TIMEOUT_S = 60.0
SUPERUSER = "postgres"


class ClusterError(RuntimeError):
    """The throwaway cluster could not be set up or started."""


def find_bindir() -> Path | None:
    """The ``bin`` directory of the newest installed PostgreSQL, or None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")

    def version(path: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/([\d.]+)/bin/", path)
        return tuple(int(part) for part in match.group(1).split(".")) if match else (0,)

    if not found:
        return None
    return Path(max(found, key=version)).parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    bindir: Path
    root: Path = field(init=False)
    port: int = 0
    startup_seconds: float = 0.0
    _as_root: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="billsync-pg-"))
        if self._as_root:
            shutil.chown(self.root, user="postgres", group="postgres")

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def logfile(self) -> Path:
        return self.root / "server.log"

    def _run(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
        )
        if result.returncode != 0:
            raise ClusterError(
                f"{' '.join(command)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{self._log_tail()}"
            )
        return result

    def _log_tail(self) -> str:
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()[-30:]
        except OSError:
            return ""
        return "\n--- server log ---\n" + "\n".join(lines)

    def start(self) -> None:
        """initdb and start the server; returns once it accepts connections."""
        started = time.monotonic()
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        last_error: Exception | None = None
        for _attempt in range(3):  # a "free" port can be taken before the server binds it
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(START_TIMEOUT_S)),
                    "start",
                    timeout=START_TIMEOUT_S + 10,
                )
            except (ClusterError, subprocess.TimeoutExpired) as error:
                last_error = error
                self._stop_quietly()
                continue
            self.wait_ready()
            self.startup_seconds = time.monotonic() - started
            return
        raise ClusterError(f"could not start PostgreSQL: {last_error}")

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Poll until a connection succeeds; fail with the server log after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"PostgreSQL on 127.0.0.1:{self.port} not ready after {timeout:.0f}s:"
                        f" {error}{self._log_tail()}"
                    ) from error
                time.sleep(0.1)

    def dsn(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def sqlalchemy_url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        name = name or f"billsync_t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def createdb(self, name: str) -> None:
        """Create a database with the ``createdb`` client, as an operator would."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)

    def _stop_quietly(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        """Stop the server and remove every file of the cluster."""
        try:
            self._stop_quietly()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
