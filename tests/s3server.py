"""A real S3-compatible server for the tests and benchmarks: s3s-fs (crates.io,
Apache-2.0), which serves the S3 API over a plain directory. ``./dev.sh setup``
installs it into ``~/.cache/pushstream/bin`` (outside the clone, so fresh clones
reuse it); ``PUSHSTREAM_S3S_FS`` names another binary.

Each :class:`S3Server` listens on a free port of 127.0.0.1 and keeps its objects
in a directory of its own; a bucket is a directory under it (what s3s-fs's
``CreateBucket`` makes too)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

#: Where ``./dev.sh setup`` installs s3s-fs.
S3S_FS = Path(os.environ.get("PUSHSTREAM_S3S_FS") or Path.home() / ".cache/pushstream/bin/s3s-fs")
ACCESS_KEY = "pushstream-test"
SECRET_KEY = "pushstream-test-secret"
#: s3s-fs accepts any region in the signature; clients need one.
REGION = "us-east-1"


def unavailable_reason() -> str | None:
    """Why no S3 server can run here (``None``: it can)."""
    if S3S_FS.is_file() and os.access(S3S_FS, os.X_OK):
        return None
    found = shutil.which("s3s-fs")
    if found:
        return None
    return f"s3s-fs is not installed ({S3S_FS}); ./dev.sh setup installs it"


def _binary() -> str:
    if S3S_FS.is_file():
        return str(S3S_FS)
    return shutil.which("s3s-fs") or str(S3S_FS)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class S3Server:
    """An s3s-fs process over ``root``; :meth:`start` and :meth:`stop` may be repeated (restarts)."""

    def __init__(self, root: Path, *, port: int | None = None) -> None:
        self.root = root
        self.port = port or _free_port()
        self.log_path = root.parent / f"{root.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def environment(self) -> dict[str, str]:
        """The ``AWS_*`` variables that point an S3 client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def create_bucket(self, name: str) -> str:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        return name

    def start(self, timeout: float = 30.0) -> S3Server:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            _binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
            str(self.root),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"s3s-fs exited with {self._process.returncode}: {self._log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"s3s-fs did not listen on {self.endpoint}: {self._log_tail()}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""
