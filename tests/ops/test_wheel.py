"""``./dev.sh wheel``'s wheel, installed in a fresh virtualenv: no test-only code in
it, the console script works, and ``serve`` takes an event.

The dependencies come from the project's virtualenv (a ``.pth`` to its
site-packages) rather than from an index, so the test runs offline; the wheel
itself is installed with ``--no-deps``, and ``pip check`` is not asked for."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest
import requests

from serverprocess import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_installs_and_serves(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [str(ROOT / "dev.sh"), "wheel", str(dist)], cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False
    )
    assert build.returncode == 0, build.stderr
    wheels = list(dist.glob("pushstream-*-cp311-abi3-*.whl"))
    assert len(wheels) == 1, build.stdout
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "pushstream/_core.abi3.so" in names
    assert "pushstream/_core.pyi" in names and "pushstream/py.typed" in names
    assert not [n for n in names if "reference" in n or n.startswith("tests/")]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheels[0])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies: the project's site-packages, after the venv's own (the wheel wins).
    Path(site, "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [str(python), "-c", "import pushstream; print(pushstream.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    assert where.startswith(str(venv)), where
    pushstream = venv / "bin" / "pushstream"
    helped = subprocess.run([str(pushstream), "--help"], capture_output=True, text=True, env=env, check=False)
    assert helped.returncode == 0, helped.stderr
    assert "Quick start:" in helped.stdout

    port = free_port()
    env["PUSHSTREAM_API_TOKEN"] = "wheel-token"
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(pushstream), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if requests.get(f"{url}/health-check", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cli_env = {**env, "PUSHSTREAM_URL": url}
        for args in (
            ["sources", "create", "events"],
            ["sinks", "create", "events", "raw", "--table", "in.c-w.raw", "--column", "body:body"],
        ):
            done = subprocess.run([str(pushstream), *args], capture_output=True, text=True, env=cli_env, check=False)
            assert done.returncode == 0, done.stderr
        source = requests.get(
            f"{url}/v1/branches/default/sources/events", headers={"X-StorageApi-Token": "wheel-token"}, timeout=30
        ).json()
        assert requests.post(source["http"]["url"], json={"from": "the wheel"}, timeout=30).status_code == 200
        page = requests.get(f"{url}/v1/documentation/swagger-ui/swagger-ui.css", timeout=30)
        assert page.status_code == 200
    finally:
        server.terminate()
        server.wait(60)
        log.close()
