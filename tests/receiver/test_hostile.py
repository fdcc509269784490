"""Hostile and careless clients against a real ``pushstream serve``: slow headers and
bodies on hundreds of connections, cut bodies, oversize bodies and lines, deep
input, header floods and random bytes. While each attack runs, normal clients keep
sending numbered events and reading the API: they must keep being answered, and at
the end every acknowledged event is in its table (and nothing of a cut body)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import requests

from serverprocess import ServerProcess
from streamclient import Stream, table_rows

BODY_TIMEOUT = 3.0
IDLE_TIMEOUT = 5.0
COLUMNS = [{"type": "path", "name": "n", "path": "n"}, {"type": "body", "name": "body"}]
TABLE = "in.c-test.rows"
#: Numbers of the events of cut bodies: none of them may reach the table.
CUT_NUMBERS = range(-1000, -1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = ("--body-timeout", str(BODY_TIMEOUT), "--idle-timeout", str(IDLE_TIMEOUT))
    process = ServerProcess(tmp_path_factory.mktemp("hostile") / "data", args=args).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def stream(server: ServerProcess) -> Stream:
    created = Stream(server).create()
    created.sink("rows", COLUMNS)
    return created


@dataclass
class NormalClients:
    """Well-behaved clients: numbered single events and API reads, with their outcomes."""

    stream: Stream
    acknowledged: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    api_ok: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _numbers: Iterator[int] | None = None

    def start(self, first: int) -> NormalClients:
        counter = iter(range(first, first + 1_000_000))
        lock = threading.Lock()

        def post() -> None:
            session = requests.Session()
            while not self._stop.is_set():
                with lock:
                    n = next(counter)
                try:
                    response = session.post(self.stream.url, json={"n": n}, timeout=10)
                except requests.RequestException as exc:
                    self.failures.append(f"event {n}: {exc}")
                    session = requests.Session()
                    continue
                if response.status_code == 200:
                    with lock:
                        self.acknowledged.append(n)
                else:
                    self.failures.append(f"event {n}: {response.status_code} {response.text}")
                time.sleep(0.01)

        def read_api() -> None:
            while not self._stop.is_set():
                try:
                    response = self.stream.server.request("GET", "/v1/branches/default/sources")
                    health = requests.get(f"{self.stream.server.url}/health-check", timeout=10)
                except requests.RequestException as exc:
                    self.failures.append(f"API: {exc}")
                    continue
                if response.status_code == 200 and health.status_code == 200:
                    self.api_ok += 1
                else:
                    self.failures.append(f"API: {response.status_code} / {health.status_code}")
                time.sleep(0.05)

        self._threads = [threading.Thread(target=post, daemon=True) for _ in range(4)]
        self._threads.append(threading.Thread(target=read_api, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


_acknowledged: list[int] = []
_first = iter(range(0, 10**9, 1_000_000))


def under_attack(stream: Stream, attack: Callable[[], None]) -> None:
    """Runs ``attack`` while normal clients work; they must all be answered, and go on."""
    clients = NormalClients(stream).start(next(_first))
    try:
        time.sleep(0.3)
        attack()
        before = (len(clients.acknowledged), clients.api_ok)
        time.sleep(0.5)
        after = (len(clients.acknowledged), clients.api_ok)
    finally:
        clients.stop()
    _acknowledged.extend(clients.acknowledged)
    assert not clients.failures, clients.failures[:5]
    assert after[0] > before[0] and after[1] > before[1], "normal requests stopped being answered"


def _ingest_path(stream: Stream) -> str:
    return "/stream/" + stream.url.split("/stream/", 1)[1]


def _connect(server: ServerProcess, timeout: float = 10.0) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    return conn


def _head(stream: Stream, content_type: str, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {_ingest_path(stream)} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n"
    ).encode()


def _answer(conn: socket.socket, timeout: float = 10.0) -> bytes:
    """What the server sends until it closes the connection; fails if it does
    neither within ``timeout`` (a reset counts as closed)."""
    conn.settimeout(timeout)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except TimeoutError:
        pytest.fail(f"the server neither answered nor closed the connection in {timeout} s: {data[:80]!r}")
    except ConnectionResetError:
        pass
    return data


def _hold_slowly(conns: list[socket.socket], piece: Callable[[int], bytes], seconds: float) -> None:
    """Sends one small piece per connection every second for ``seconds``."""
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.send(piece(i))
        i += 1
        time.sleep(1.0)


def test_slow_bodies_hold_no_thread_and_are_dropped(stream: Stream) -> None:
    conns: list[socket.socket] = []

    def attack() -> None:
        for _ in range(300):
            conn = _connect(stream.server)
            conn.sendall(_head(stream, "application/json", 1000) + b"{")
            conns.append(conn)
        # One byte every second, as long as the body timeout and a little more.
        _hold_slowly(conns, lambda i: b" ", BODY_TIMEOUT + 1.5)

    under_attack(stream, attack)
    answers = [_answer(conn) for conn in conns]
    for conn in conns:
        conn.close()
    # Every slow client was dropped with 408 (or closed once its answer was lost).
    assert all(a.startswith(b"HTTP/1.1 408") or a == b"" for a in answers), {a[:40] for a in answers}
    assert sum(a.startswith(b"HTTP/1.1 408") for a in answers) > 250


def test_slow_headers_and_idle_connections_are_closed(stream: Stream) -> None:
    conns: list[socket.socket] = []
    idle: list[socket.socket] = []

    def attack() -> None:
        for _ in range(300):
            conn = _connect(stream.server)
            conn.sendall(f"POST {_ingest_path(stream)} HTTP/1.1\r\nHost: x\r\n".encode())
            conns.append(conn)
        for _ in range(50):
            # A keep-alive connection that made one request and then says nothing.
            conn = _connect(stream.server)
            conn.sendall(b"GET /health-check HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            idle.append(conn)
        _hold_slowly(conns, lambda i: b"X" if i % 2 else b"-", IDLE_TIMEOUT + 2.0)

    under_attack(stream, attack)
    for conn in conns + idle:
        answer = _answer(conn, timeout=IDLE_TIMEOUT + 5)
        conn.close()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:60]


def _cut_batch(first: int, lines: int = 10) -> bytes:
    return b"".join(json.dumps({"n": first - i}).encode() + b"\n" for i in range(lines))


def test_cut_bodies_are_rejected_and_nothing_of_them_is_stored(stream: Stream) -> None:
    answers: list[bytes] = []

    def attack() -> None:
        for k in range(30):
            body = _cut_batch(CUT_NUMBERS.stop - 1 - k * 10)
            conn = _connect(stream.server)
            kind = k % 3
            if kind == 0:  # declared 10 lines, sent 5, half-closed: the client waits for the answer
                conn.sendall(_head(stream, "application/x-ndjson", len(body)) + body[: len(body) // 2])
                conn.shutdown(socket.SHUT_WR)
                answers.append(_answer(conn))
            elif kind == 1:  # declared 10 lines, sent 5, closed
                conn.sendall(_head(stream, "application/x-ndjson", len(body)) + body[: len(body) // 2])
            else:  # chunked, without the last chunk
                chunk = b"%x\r\n" % len(body) + body + b"\r\n"
                conn.sendall(_head(stream, "application/x-ndjson", None) + chunk)
                conn.shutdown(socket.SHUT_WR)
                answers.append(_answer(conn))
            conn.close()

    under_attack(stream, attack)
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
        assert b"stream.in.badRequest" in answer


def test_oversize_bodies_are_refused(stream: Stream) -> None:
    def attack() -> None:
        big = json.dumps({"n": -1, "pad": "x" * (1 << 20)})
        response = requests.post(stream.url, data=big, headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 413, response.text
        conn = _connect(stream.server)
        conn.sendall(_head(stream, "application/json", None))
        with contextlib.suppress(OSError):
            for _ in range(40):  # 2.5 MB chunked, past the 1 MB limit
                conn.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
            conn.sendall(b"0\r\n\r\n")
        assert _answer(conn).startswith(b"HTTP/1.1 413")
        conn.close()

    under_attack(stream, attack)


def test_an_oversize_line_in_a_batch_is_refused(stream: Stream) -> None:
    # A source of its own: an acknowledged oversize line would block the import of its file.
    stream = Stream(stream.server, "lines").create()
    stream.sink("lines", COLUMNS)
    lines = b'{"n":2000000005}\n' + json.dumps({"n": 2000000006, "pad": "x" * (2 << 20)}).encode() + b"\n"
    response = requests.post(stream.url, data=lines, headers={"Content-Type": "application/x-ndjson"}, timeout=30)
    assert response.status_code in (400, 413), response.text


def test_deep_json_is_refused(stream: Stream) -> None:
    def attack() -> None:
        depth = 100_000
        body = '{"a":' * depth + "1" + "}" * depth
        response = requests.post(stream.url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 400, response.text

    under_attack(stream, attack)


def test_header_floods_and_random_bytes_do_not_disturb_others(stream: Stream) -> None:
    rng = random.Random(11)

    def attack() -> None:
        conns = []
        for k in range(100):
            conn = _connect(stream.server)
            if k % 3 == 0:  # many headers
                head = f"POST {_ingest_path(stream)} HTTP/1.1\r\nHost: x\r\n".encode()
                conn.sendall(head + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n")
            elif k % 3 == 1:  # one huge header
                conn.sendall(b"GET /health-check HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
            else:  # noise
                conn.sendall(rng.randbytes(65536))
            conns.append(conn)
        for k, conn in enumerate(conns):
            answer = _answer(conn)
            conn.close()
            assert not answer.startswith(b"HTTP/1.1 2"), answer[:80]
            if k % 3 == 1:  # over the header limit of the API too
                assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
        for _ in range(50):
            with contextlib.suppress(OSError), _connect(stream.server) as conn:
                conn.sendall(os.urandom(rng.randrange(1, 4096)))

    under_attack(stream, attack)


def test_many_clients_beyond_the_ingest_cap_get_503_with_retry_after(tmp_path_factory: pytest.TempPathFactory) -> None:
    args = ("--max-ingest-requests", "8", "--body-timeout", "30")
    server = ServerProcess(tmp_path_factory.mktemp("cap") / "data", args=args).start()
    try:
        stream = Stream(server).create()
        stream.sink("rows", COLUMNS)
        conns = []
        for _ in range(8):
            conn = _connect(server)
            conn.sendall(_head(stream, "application/json", 100) + b"{")
            conns.append(conn)
        time.sleep(0.5)
        response = requests.post(stream.url, json={"n": 1}, timeout=10)
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "stream.in.serviceUnavailable"
        assert response.headers["Retry-After"] == "1"
        # The API is not behind the ingest gate.
        assert server.request("GET", "/v1/branches/default/sources").status_code == 200
        for conn in conns:
            conn.close()
        deadline = time.monotonic() + 10
        while (status := requests.post(stream.url, json={"n": 2}, timeout=10).status_code) == 503:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status == 200
    finally:
        server.stop()


def test_nothing_acknowledged_is_lost(stream: Stream) -> None:
    assert _acknowledged, "no normal request was acknowledged"
    result = stream.flush(wait=60)
    assert result["imported"], result
    numbers = [int(row[0]) for row in table_rows(stream.server.data_dir, TABLE)]
    assert set(_acknowledged) <= set(numbers), "an acknowledged event is missing"
    assert not set(numbers) & set(CUT_NUMBERS), "rows of a cut body were stored"
