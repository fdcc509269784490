"""A cluster on one machine for the tests and the benchmark: several
``pushstream serve`` processes (each with its own data dir and port) on one
PostgreSQL control plane, one S3 server for staging and one PostgreSQL target,
behind nginx (from Debian's packages, installed by ``./dev.sh setup``).

    cluster = Cluster(tmp_path, control_url, target_url, s3, nodes=3).start()
    cluster.balancer_url      # nginx, round robin over the live nodes
    cluster.nodes[1].kill()   # kill -9 of one node's process tree
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from s3server import S3Server
from serverprocess import ServerProcess, free_port

#: Upload conditions of the cluster tests: quick (imports are asked for with a flush).
QUICK_SETTINGS = ("storage.level.staging.upload.trigger.interval=1s",)


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


class Nginx:
    """nginx balancing over ``ports`` on a free port of 127.0.0.1.

    A request that cannot reach a node (connection refused: the node is down)
    goes to the next one; a request that reached a node is never sent twice
    (nginx does not repeat a POST once it was sent)."""

    def __init__(self, root: Path, ports: list[int]) -> None:
        self.root = root
        self.ports = ports
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;" for port in self.ports)
        return f"""
daemon off;
master_process on;
worker_processes 1;
user root;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.root}/body;
    proxy_temp_path {self.root}/proxy;
    fastcgi_temp_path {self.root}/fastcgi;
    uwsgi_temp_path {self.root}/uwsgi;
    scgi_temp_path {self.root}/scgi;
    upstream pushstream {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 64m;
        location / {{
            proxy_pass http://pushstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""

    def start(self) -> Nginx:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (./dev.sh setup installs it)")
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "nginx.conf"
        path.write_text(self.config())
        log = (self.root / "stdout.log").open("ab")
        self.process = subprocess.Popen([binary, "-c", str(path), "-p", str(self.root)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.root / 'error.log').read_text(errors='replace')}")
            try:
                requests.get(self.url + "/health-check", timeout=2)
                return self
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class ClusterNode(ServerProcess):
    """One node: ``pushstream serve --cluster`` with its own data dir and port."""

    def __init__(self, name: str, data_dir: Path, args: tuple[str, ...], env: dict[str, str]) -> None:
        super().__init__(data_dir, args=(*args, "--node-name", name), env=env)
        self.name = name

    def kill(self) -> None:
        """``kill -9`` of the server; its workers and coordinator die with it (PDEATHSIG)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()
        process.wait()
        # The children get SIGKILL from the kernel when their parent dies; wait until they are gone.
        deadline = time.monotonic() + 10
        while _children_of(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                found.append(int(entry.name))
    return found


class Cluster:
    """``count`` nodes on one control plane, staging and target, behind nginx."""

    def __init__(
        self,
        root: Path,
        control_url: str,
        target_url: str,
        s3: S3Server,
        *,
        count: int = 3,
        workers: int = 1,
        settings: tuple[str, ...] = QUICK_SETTINGS,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.control_url = control_url
        self.target_url = target_url
        self.s3 = s3
        args: list[str] = [
            "--cluster",
            control_url,
            "--staging",
            "s3://pushstream/staging",
            "--target",
            target_url,
            "--workers",
            str(workers),
            *extra_args,
        ]
        for setting in settings:
            args += ["--setting", setting]
        env = {**s3.environment}
        self.nodes = [ClusterNode(f"n{i + 1}", root / f"node-{i + 1}", tuple(args), env) for i in range(count)]
        self.balancer = Nginx(root / "nginx", [node.port for node in self.nodes])

    @property
    def balancer_url(self) -> str:
        return self.balancer.url

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start(timeout=60)
        self.balancer.start()
        self.wait_live(len(self.nodes))
        return self

    def stop(self) -> None:
        self.balancer.stop()
        for node in self.nodes:
            node.stop()

    def node_list(self, via: ServerProcess | None = None) -> list[dict[str, Any]]:
        node = via or next(n for n in self.nodes if n.process is not None)
        nodes: list[dict[str, Any]] = node.request("GET", "/v1/nodes").json()["nodes"]
        return nodes

    def wait_live(self, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Waits until ``count`` nodes are live and one of them coordinates."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                listed = self.node_list()
            except requests.RequestException:
                listed = []
            live = [n for n in listed if n["alive"]]
            if len(live) == count and sum(n["coordinator"] for n in live) == 1:
                return listed
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} live nodes and one coordinator: {listed}")
            time.sleep(0.1)

    def coordinator(self) -> ClusterNode:
        listed = self.wait_live(sum(n.process is not None for n in self.nodes))
        name = next(n["name"] for n in listed if n["coordinator"])
        return next(node for node in self.nodes if node.name == name)
