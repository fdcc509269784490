"""The quick start of the documentation, run as written (the ``pushstream serve``
line is replaced by a server of the test on a free port with the same data dir).

Every Markdown file with a ``<!-- cli-quickstart -->`` marker before a ``sh``
block is run: ``docs/cli.md`` always has one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from serverprocess import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
MARKED = re.compile(r"<!-- cli-quickstart[^>]*-->\s*```sh\n(.*?)```", re.DOTALL)


def _documents() -> list[Path]:
    found = [p for p in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))) if MARKED.search(p.read_text())]
    assert ROOT / "docs" / "cli.md" in found
    return found


def _run(script: str, data_dir: Path, token: str, cwd: Path) -> tuple[str, str]:
    """Runs ``script`` with bash (-euo pipefail) in ``cwd`` against a server of the
    test with ``data_dir`` and ``token``; returns (stdout, stderr) of a run that
    must succeed."""
    server = ServerProcess(data_dir, token=token).start()
    try:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PUSHSTREAM_URL": server.url,
        }
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            timeout=300,
            check=False,
        )
    finally:
        server.stop()
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"{stdout}\n{stderr}"
    return stdout, stderr


def _table(stdout: str) -> list[list[str]]:
    """The cells of the last table (``pushstream tail``) in the output."""
    table = stdout[stdout.rindex("┌") :]
    return [[c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")]


@pytest.mark.parametrize("document", _documents(), ids=lambda p: p.name)
def test_quickstart(document: Path, tmp_path: Path) -> None:
    match = MARKED.search(document.read_text())
    assert match is not None
    script = match.group(1)
    serve = [line for line in script.splitlines() if line.lstrip().startswith("pushstream serve")]
    assert len(serve) == 1, "the quick start starts one server"
    data_dir = re.search(r"--data-dir (\S+)", serve[0])
    token = re.search(r"PUSHSTREAM_API_TOKEN=(\S+)", script)
    assert data_dir and token
    body = script.replace(serve[0], "")
    stdout, stderr = _run(body, (tmp_path / data_dir.group(1)).resolve(), token.group(1), tmp_path)
    # The tail at the end: three rows, in the order they were sent.
    rows = _table(stdout)
    assert rows[0] == ["id", "at", "user", "page"]
    assert [r[2:] for r in rows[1:]] == [["1", "/"], ["2", "/cart"], ["3", "/checkout"]]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", r[0]) for r in rows[1:])
    assert "ingested 2 records" in stderr and "ingested 1 record " in stderr


README_BLOCK = re.compile(r"<!-- readme-quickstart[^>]*-->\s*```sh\n(.*?)```", re.DOTALL)


def test_readme_quickstart(tmp_path: Path) -> None:
    """The README's second terminal, against a server on a free port whose data dir
    is ``./pushstream-data`` of the working directory (what ``./dev.sh serve`` uses)."""
    match = README_BLOCK.search((ROOT / "README.md").read_text())
    assert match is not None
    script = match.group(1)
    token = re.search(r"PUSHSTREAM_API_TOKEN=(\S+)", script)
    assert token
    stdout, stderr = _run(script, tmp_path / "pushstream-data", token.group(1), tmp_path)
    assert 'OKOK{"statusCode":400,"error":"stream.in.writeFailed"' in stdout
    assert "ingested 1 record " in stderr
    rows = _table(stdout)
    assert rows[0] == ["id", "received", "user", "kind", "body"]
    assert [r[2:4] for r in rows[1:]] == [["7", "CLICK"], ["8", "VIEW"], ["9", "BUY"], ["10", "SCROLL"]]
    assert rows[1][4] == '{"user": {"id": 7}, "event": "click"}'
    assert rows[4][4] == '{"user": {"id": 10}, "event": "scroll"}'  # an array element as written
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r[1]) for r in rows[1:])
