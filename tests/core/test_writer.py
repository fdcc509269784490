"""Durable slice writers: contents, sync settings, recovery, concurrency and kill -9."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pushstream import (
    SliceWriter,
    SyncSettings,
    WriterClosedError,
    WriterError,
    parse_csv,
    recover_slice,
)


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


def test_writes_typed_values(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "slice.csv"
    with SliceWriter(path) as writer:
        assert writer.write([["text", 1, -2.5, True, False, None], ['q"uote', 10**18, 1.0, "", "x\ny", 0.1]]) == 2
        assert path.read_bytes() == (
            b'"text","1","-2.5","true","false",""\n"q""uote","1000000000000000000","1.0","","x\ny","0.1"\n'
        )
        stats = writer.stats
        assert (stats.rows, stats.synced_rows, stats.bytes) == (2, 2, len(path.read_bytes()))
    assert writer.closed
    with pytest.raises(WriterClosedError):
        writer.write([["late"]])
    assert isinstance(WriterClosedError("x"), WriterError)


def test_rejects_values_it_cannot_encode(tmp_path: Path) -> None:
    with SliceWriter(tmp_path / "s.csv") as writer:
        with pytest.raises(TypeError, match="cannot write a value of type bytes"):
            writer.write([[b"x"]])
        with pytest.raises(ValueError, match="does not fit into 64 bits"):
            writer.write([[2**64]])
        with pytest.raises(ValueError, match="whole CSV rows"):
            writer.write_csv(b'"a"\n"b', rows=2)
        with pytest.raises(ValueError, match="whole CSV rows"):
            writer.write_csv(b'"a"\n', rows=2)
        assert writer.write_csv(b'"a"\n"b"\n', rows=2) == 2
    assert (tmp_path / "s.csv").read_bytes() == b'"a"\n"b"\n'


def test_open_failure_is_a_writer_error(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(WriterError, match=r"dir\.csv"):
        SliceWriter(tmp_path / "dir.csv")


def test_records_first_and_last_receive_time(tmp_path: Path) -> None:
    with SliceWriter(tmp_path / "s.csv") as writer:
        writer.write([["a"]], record_time_ns=200)
        writer.write([["b"]], record_time_ns=100)
        writer.write([["c"]], record_time_ns=300)
        assert (writer.stats.first_record_ns, writer.stats.last_record_ns) == (200, 300)


def test_non_waiting_rows_are_synced_by_the_interval_trigger(tmp_path: Path) -> None:
    settings = SyncSettings(wait=False, interval_trigger=0.05, count_trigger=1_000_000, bytes_trigger=1 << 30)
    with SliceWriter(tmp_path / "s.csv", settings) as writer:
        started = time.monotonic()
        writer.write([["x"]])
        assert writer.stats.synced_rows == 0
        wait_until(lambda: writer.stats.synced_rows == 1)
        assert time.monotonic() - started >= 0.045


def test_non_waiting_rows_are_synced_by_the_count_trigger(tmp_path: Path) -> None:
    settings = SyncSettings(wait=False, interval_trigger=3600, count_trigger=3)
    with SliceWriter(tmp_path / "s.csv", settings) as writer:
        writer.write([["1"], ["2"]])
        time.sleep(0.05)
        assert writer.stats.synced_rows == 0
        writer.write([["3"]])
        wait_until(lambda: writer.stats.synced_rows == 3)


def test_non_waiting_rows_are_synced_by_the_bytes_trigger(tmp_path: Path) -> None:
    settings = SyncSettings(wait=False, interval_trigger=3600, bytes_trigger=100)
    with SliceWriter(tmp_path / "s.csv", settings) as writer:
        writer.write([["x" * 50]])
        time.sleep(0.05)
        assert writer.stats.synced_rows == 0
        writer.write([["y" * 50]])
        wait_until(lambda: writer.stats.synced_rows == 2)


def test_flush_and_close_sync_everything(tmp_path: Path) -> None:
    settings = SyncSettings(wait=False, interval_trigger=3600)
    writer = SliceWriter(tmp_path / "s.csv", settings)
    writer.write([["1"]])
    writer.flush()
    assert writer.stats.synced_rows == 1
    writer.write([["2"]])
    stats = writer.close()
    assert (stats.rows, stats.synced_rows) == (2, 2)
    assert (tmp_path / "s.csv").read_bytes() == b'"1"\n"2"\n'


def test_cache_mode_writes_without_fsync(tmp_path: Path) -> None:
    with SliceWriter(tmp_path / "s.csv", SyncSettings(mode="cache")) as writer:
        writer.write([["x"]])
        assert (tmp_path / "s.csv").read_bytes() == b'"x"\n'
        assert writer.settings.mode == "cache"


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match='unknown sync mode "fast"'):
        SyncSettings(mode="fast")
    with pytest.raises(ValueError, match="must be positive"):
        SyncSettings(count_trigger=0)
    with pytest.raises(ValueError, match="non-negative"):
        SyncSettings(interval_trigger=-1)
    assert SyncSettings() == SyncSettings(mode="disk", wait=True)


def test_reopening_cuts_a_torn_row(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(b'"a","multi\nline"\n"b","to')
    writer = SliceWriter(path)
    assert (writer.recovered.rows, writer.recovered.truncated) == (1, 7)
    writer.write([["c", "d"]])
    writer.close()
    assert parse_csv(path.read_bytes()) == [["a", "multi\nline"], ["c", "d"]]


def test_recover_slice_at_every_cut(tmp_path: Path) -> None:
    rows = [["a", 'x"y'], ["b", "p\nq"], ["", ""], ["é", "🎉"]]
    data = '"a","x""y"\n"b","p\nq"\n"",""\n"é","🎉"\n'.encode()
    ends = [0, 11, 21, 27, len(data)]
    path = tmp_path / "s.csv"
    for cut in range(len(data) + 1):
        path.write_bytes(data[:cut])
        recovered = recover_slice(path)
        kept = max(e for e in ends if e <= cut)
        assert (recovered.bytes, recovered.truncated) == (kept, cut - kept), cut
        assert parse_csv(path.read_bytes()) == rows[: ends.index(kept)]


def test_many_threads_share_syncs(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    threads, per_thread = 64, 150
    with SliceWriter(path) as writer:

        def work(t: int) -> None:
            for i in range(per_thread):
                writer.write([[t, i, "x" * 100]])

        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        stats = writer.stats
    rows = parse_csv(path.read_bytes())
    assert len(rows) == threads * per_thread == stats.synced_rows
    for t in range(threads):
        assert [int(r[1]) for r in rows if r[0] == str(t)] == list(range(per_thread))
    # Group commit: concurrent writers share fsyncs.
    assert stats.syncs < stats.rows


CHILD = textwrap.dedent(
    """
    import os, sys, threading
    from pushstream import SliceWriter
    writer = SliceWriter(sys.argv[1])
    os.write(1, b"ready\\n")
    def work(t):
        i = 0
        while True:
            writer.write([[t, i, "p" * (i % 300), "multi\\nline \\"quoted\\""]])
            os.write(1, f"{t} {i}\\n".encode())
            i += 1
    for t in range(16):
        threading.Thread(target=work, args=(t,), daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.mark.parametrize("run", range(5))
def test_kill_9_loses_no_acknowledged_row(tmp_path: Path, run: int) -> None:
    path = tmp_path / "slice.csv"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    time.sleep(random.Random(run).uniform(0.2, 0.8))
    os.kill(child.pid, signal.SIGKILL)
    acknowledged = {tuple(map(int, line.split())) for line in child.stdout.read().splitlines() if line.strip()}
    child.wait()
    assert len(acknowledged) > 100

    writer = SliceWriter(path)  # recovery
    writer.close()
    rows = parse_csv(path.read_bytes())
    written = [(int(r[0]), int(r[1])) for r in rows]
    assert len(written) == len(set(written)), "a row was written twice"
    assert acknowledged <= set(written), "an acknowledged row is missing"
    for r in rows:
        assert r[2] == "p" * (int(r[1]) % 300) and r[3] == 'multi\nline "quoted"', "torn row survived recovery"
