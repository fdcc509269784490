"""Upload of a slice written by several nodes: appends interleaved in receive order."""

from __future__ import annotations

from pathlib import Path

import zstandard

from pushstream import Mapping, SinkSet, SliceWriter, parse_csv
from pushstream.coordinator.upload import upload
from pushstream.storage.layout import Layout, SinkKey
from pushstream.storage.state import SliceRef


def test_parts_of_several_nodes_are_interleaved_by_receive_time(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    ref = SliceRef(SinkKey(1, "s", "k"), "F", "S")
    # Node "b" took the first and the last request, node "a" the one in between.
    with SliceWriter(layout.slice_path(ref.sink, "F", "S", "b")) as b:
        b.write([["key", "1"]], record_time_ns=100)
        b.write([["key", "3"], ["other", "3"]], record_time_ns=300)
    with SliceWriter(layout.slice_path(ref.sink, "F", "S", "a")) as a:
        a.write([["key", "2"]], record_time_ns=200)
    result = upload(layout, ref)
    assert (result.records, result.truncated) == (4, 0)
    assert result.staging_path is not None
    with result.staging_path.open("rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    assert parse_csv(data) == [["key", "1"], ["key", "2"], ["key", "3"], ["other", "3"]]


def test_rows_without_index_keep_their_place_after_the_part(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    ref = SliceRef(SinkKey(1, "s", "k"), "F", "S")
    with SliceWriter(layout.slice_path(ref.sink, "F", "S", "a")) as a:
        a.write([["a1"]], record_time_ns=100)
    with SliceWriter(layout.slice_path(ref.sink, "F", "S", "b")) as b:
        b.write([["b1"]], record_time_ns=50)
        b.write([["b2"]], record_time_ns=150)
    # The index of "b" lost its last entry (power loss): "b2" follows "b1".
    index = layout.slice_path(ref.sink, "F", "S", "b").with_suffix(".idx")
    index.write_bytes(index.read_bytes()[:16])
    result = upload(layout, ref)
    assert result.staging_path is not None
    with result.staging_path.open("rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    assert parse_csv(data) == [["b1"], ["b2"], ["a1"]]


def test_a_request_without_rows_does_not_end_the_receive_order(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    ref = SliceRef(SinkKey(1, "s", "k"), "F", "S")
    with SliceWriter(layout.slice_path(ref.sink, "F", "S", "a")) as a:
        a.write([["a1"]], record_time_ns=100)
    with SliceWriter(layout.slice_path(ref.sink, "F", "S", "b")) as b:
        sinks = SinkSet([("k", Mapping([{"type": "body", "name": "body"}]), b)])
        text = {"Content-Type": "text/plain"}
        sinks.ingest(b"b1", headers=text, received_at_ns=50)
        # An NDJSON request of blank lines: no records, nothing to order.
        assert sinks.ingest(b"\n\n", headers={"Content-Type": "application/x-ndjson"}, received_at_ns=60)[0] == 0
        sinks.ingest(b"b2", headers=text, received_at_ns=150)
    result = upload(layout, ref)
    assert result.staging_path is not None
    with result.staging_path.open("rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True).read()
    assert parse_csv(data) == [["b1"], ["a1"], ["b2"]]
