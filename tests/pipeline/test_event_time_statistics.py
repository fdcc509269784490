"""Event time in the statistics, end to end: events with out-of-order event times
posted to a real ``pushstream serve``, imported in two files into SQLite and
PostgreSQL; each import reports the min and max of the event-time column, the
storage state keeps them with the file, and ``statistics/total`` and
``statistics/files`` (also ``?order=eventTime``) show them. A sink without an
event-time column gets no new key (Keboola's statistics, byte for byte)."""

from __future__ import annotations

from typing import Any

import pytest

from serverprocess import ServerProcess
from streamclient import BASE, Stream

COLUMNS = [
    {"type": "path", "name": "id", "path": "id", "dataType": "integer"},
    {"type": "path", "name": "t", "path": "t", "dataType": "timestamp"},
]
# Out of order within each file; the null event time does not count.
FIRST_IMPORT = (
    '{"id": 1, "t": "2026-11-30T12:00:00Z"}',
    '{"id": 2, "t": "2026-11-30T08:00:00Z"}',
    '{"id": 3, "t": null}',
    '{"id": 4, "t": "2026-11-30T10:30:00.25Z"}',
)
# Opened later, but its events are older than the first file's latest.
SECOND_IMPORT = (
    '{"id": 5, "t": "2026-11-30T09:00:00Z"}',
    '{"id": 6, "t": "2026-11-29T23:00:00+02:00"}',
)


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, server_factory: Any) -> ServerProcess:
    args: tuple[str, ...] = ()
    if request.param == "postgresql":
        request.getfixturevalue("pg_cluster")
        args = ("--target", request.getfixturevalue("pg_admin_url"))
    started: ServerProcess = server_factory(args=args)
    return started


def _get(server: ServerProcess, path: str) -> Any:
    response = server.request("GET", f"{BASE}/events/sinks/{path}")
    assert response.status_code == 200, response.text
    return response.json()


def _post_and_import(stream: Stream, bodies: tuple[str, ...]) -> None:
    for body in bodies:
        response = stream.post(body)
        assert response.status_code == 200, response.text
    assert stream.flush(wait=60)["imported"]


def _level(records: int, record_times: dict[str, Any], events: tuple[str, str] | None = None) -> dict[str, Any]:
    """A level as the API answers it, in its key order; the receive times and
    sizes (not known in advance) are taken from ``record_times``."""
    level = {
        "firstRecordAt": record_times["firstRecordAt"],
        "lastRecordAt": record_times["lastRecordAt"],
        "recordsCount": records,
        "compressedSize": record_times["compressedSize"],
        "uncompressedSize": record_times["uncompressedSize"],
    }
    if events is not None:
        level["firstEventAt"], level["lastEventAt"] = events
    return level


def test_statistics_give_the_event_time_range_of_imported_rows(server: ServerProcess) -> None:
    stream = Stream(server).create()
    stream.sink("timed", COLUMNS, mapping={"eventTimeColumn": "t"})
    stream.sink("plain", COLUMNS)
    _post_and_import(stream, FIRST_IMPORT)
    _post_and_import(stream, SECOND_IMPORT)

    totals = _get(server, "timed/statistics/total")
    target = totals["levels"]["target"]
    assert list(totals) == ["total", "levels"] and list(totals["levels"]) == ["target"]
    whole_range = ("2026-11-29T21:00:00.000Z", "2026-11-30T12:00:00.000Z")
    assert totals == {
        "total": _level(6, target, whole_range),
        "levels": {"target": _level(6, target, whole_range)},
    }
    assert list(totals["total"]) == list(_level(6, target, whole_range))

    files = _get(server, "timed/statistics/files")["files"]
    # Newest first (Keboola's order): the empty writing file the flush opened, then the two imports.
    assert [f["state"] for f in files] == ["writing", "imported", "imported"]
    assert files[0]["statistics"] == {
        "total": {"recordsCount": 0, "compressedSize": 0, "uncompressedSize": 0},
        "levels": {},
    }
    second, first = files[1]["statistics"], files[2]["statistics"]
    first_range = ("2026-11-30T08:00:00.000Z", "2026-11-30T12:00:00.000Z")
    second_range = ("2026-11-29T21:00:00.000Z", "2026-11-30T09:00:00.000Z")
    assert first == {
        "total": _level(4, first["levels"]["target"], first_range),
        "levels": {"target": _level(4, first["levels"]["target"], first_range)},
    }
    assert second == {
        "total": _level(2, second["levels"]["target"], second_range),
        "levels": {"target": _level(2, second["levels"]["target"], second_range)},
    }

    # The sink's sizes and receive times are its files'.
    for key in ("compressedSize", "uncompressedSize"):
        assert target[key] == first["total"][key] + second["total"][key]
    assert target["firstRecordAt"] == first["total"]["firstRecordAt"]
    assert target["lastRecordAt"] == second["total"]["lastRecordAt"]

    # By event time: the first file has the latest event; files without one follow.
    by_event = _get(server, "timed/statistics/files?order=eventTime")["files"]
    assert [f["openedAt"] for f in by_event] == [files[2]["openedAt"], files[1]["openedAt"], files[0]["openedAt"]]
    assert by_event == [files[2], files[1], files[0]]
    assert _get(server, "timed/statistics/files?order=openedAt")["files"] == files

    # The sink without an event-time column: the same rows, no new key anywhere.
    plain_response = server.request("GET", f"{BASE}/events/sinks/plain/statistics/total")
    assert "Event" not in plain_response.text
    plain = plain_response.json()
    assert plain["total"]["recordsCount"] == 6
    keboola_keys = ["firstRecordAt", "lastRecordAt", "recordsCount", "compressedSize", "uncompressedSize"]
    assert list(plain["total"]) == keboola_keys
    plain_files = server.request("GET", f"{BASE}/events/sinks/plain/statistics/files?order=eventTime")
    assert plain_files.status_code == 200
    assert "Event" not in plain_files.text
    # No event times: the order is newest first, as without the parameter.
    assert plain_files.json() == _get(server, "plain/statistics/files")


def test_an_unknown_file_order_is_a_bad_request(server_factory: Any) -> None:
    server: ServerProcess = server_factory()
    stream = Stream(server).create()
    stream.sink("timed", COLUMNS, mapping={"eventTimeColumn": "t"})
    response = server.request("GET", f"{BASE}/events/sinks/timed/statistics/files?order=eventtime")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "stream.api.invalidEnumValue"
    assert body["message"] == 'Value of order must be one of "openedAt", "eventTime" but got value "eventtime".'
