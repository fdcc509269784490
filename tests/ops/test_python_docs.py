"""docs/python.md stays true: its ``python`` blocks run in order, in one
namespace, in an empty directory, against a real server with a source ``events``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from opstest import BASE, wait_task

from serverprocess import ServerProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "python.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_python_md_examples_run(server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wait_task(server, server.request("POST", BASE, json={"sourceId": "events", "name": "events", "type": "http"}))
    columns = [{"type": "path", "name": "id", "path": "id", "primaryKey": True}, {"type": "body", "name": "body"}]
    table = {"type": "keboola", "tableId": "in.c-py.events", "mapping": {"columns": columns}}
    sink = {"sinkId": "all", "name": "all", "type": "table", "table": table}
    wait_task(server, server.request("POST", f"{BASE}/events/sinks", json=sink))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PUSHSTREAM_URL", server.url)
    monkeypatch.setenv("PUSHSTREAM_API_TOKEN", server.token)
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) == 6
    namespace: dict[str, object] = {"__name__": "python_md"}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{DOC.name} block {number}", "exec"), namespace)
    # 1 + 1000 + 1 events reached the sink (nodes report what they wrote in their heartbeat).
    path = f"{BASE}/events/sinks/all/statistics/total"
    deadline = time.monotonic() + 30
    while server.request("GET", path).json()["total"]["recordsCount"] != 1002:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_python_md_examples_type_check(tmp_path: Path) -> None:
    """The examples type-check against the package's stubs (mypy --strict)."""
    from mypy import api

    script = tmp_path / "python_md.py"
    script.write_text("\n".join(BLOCK.findall(DOC.read_text())))
    stdout, stderr, status = api.run(["--strict", "--no-incremental", "--python-version", "3.11", str(script)])
    assert status == 0, stdout + stderr
