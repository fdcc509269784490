"""Versions of sources and sinks: listing, detail, pagination, rollback and the 1000-version history."""

from __future__ import annotations

from typing import Any

import pytest
from apitest import ADMIN_BY, BASE, HASH, TIME, Api, error

from statebackends import raw_execute

SRC = f"{BASE}/my-source"
SINK = f"{SRC}/sinks/my-sink"


def _versions(api: Api, path: str, **query: Any) -> dict[str, Any]:
    response = api.get(f"{path}/versions", query_string=query)
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[return-value]


def test_source_versions(api: Api, source: dict[str, Any]) -> None:
    api.run("PATCH", SRC, json={"name": "Second"})
    api.run("PATCH", SRC, json={"description": "third", "changeDescription": "Third."})
    body = _versions(api, SRC)
    versions = body["versions"]
    assert [v["number"] for v in versions] == [1, 2, 3]
    assert [v["description"] for v in versions] == ["New source.", "Updated.", "Third."]
    for version in versions:
        assert set(version) == {"number", "hash", "description", "at", "by"}
        assert HASH.match(version["hash"]) and TIME.match(version["at"]) and version["by"] == ADMIN_BY
    assert len({v["hash"] for v in versions}) == 3
    assert versions[0] == source["version"]
    assert versions[2] == api.get(SRC).json["version"]  # type: ignore[index]
    # Keboola keys versions by a 10-digit number: the page ids are such keys.
    assert body["page"] == {"limit": 100, "totalCount": 3, "afterId": "", "lastId": "0000000003"}
    detail = api.get(f"{SRC}/versions/2")
    assert detail.status_code == 200
    assert detail.json == versions[1]


def test_version_pagination(api: Api, source: dict[str, Any]) -> None:
    for i in range(4):
        api.run("PATCH", SRC, json={"description": f"d{i}"})
    first = _versions(api, SRC, limit=2)
    assert [v["number"] for v in first["versions"]] == [1, 2]
    assert first["page"] == {"limit": 2, "totalCount": 5, "afterId": "", "lastId": "0000000002"}
    # As in Keboola, the total of a versions page counts the versions after afterId.
    second = _versions(api, SRC, limit=2, afterId="0000000002")
    assert [v["number"] for v in second["versions"]] == [3, 4]
    assert second["page"] == {"limit": 2, "totalCount": 3, "afterId": "0000000002", "lastId": "0000000004"}
    last = _versions(api, SRC, limit=2, afterId="4")
    assert [v["number"] for v in last["versions"]] == [5]
    assert last["page"] == {"limit": 2, "totalCount": 1, "afterId": "4", "lastId": "0000000005"}
    assert _versions(api, SRC, afterId="5")["versions"] == []
    assert _versions(api, SRC, afterId="0000000005")["page"] == {
        "limit": 100,
        "totalCount": 0,
        "afterId": "0000000005",
        "lastId": "",
    }
    response = api.get(f"{SRC}/versions", query_string={"afterId": "x"})
    assert response.status_code == 400
    assert response.json == error(400, "badRequest", '"query.afterId" must be a version number, found "x".')


@pytest.mark.parametrize(
    ("number", "status", "body"),
    [
        (
            "9",
            404,
            error(404, "sourceVersionNotFound", 'Source version "my-source/0000000009" not found in the branch.'),
        ),
        ("0", 400, error(400, "invalidRange", "VersionNumber must be greater or equal than 1 but got value 0.")),
        ("-1", 400, error(400, "invalidRange", "VersionNumber must be greater or equal than 1 but got value -1.")),
        (
            "one",
            400,
            error(
                400,
                "invalidFieldType",
                'Invalid value "one" for "versionNumber", must be a integer; '
                "versionNumber must be greater or equal than 1 but got value 0.",
            ),
        ),
    ],
)
def test_version_errors(api: Api, source: dict[str, Any], number: str, status: int, body: dict[str, Any]) -> None:
    for method, suffix in (("GET", ""), ("PUT", "/rollback")):
        response = api.request(method, f"{SRC}/versions/{number}{suffix}")
        assert response.status_code == status
        assert response.json == body


def test_rollback_source(api: Api, source: dict[str, Any]) -> None:
    api.run("PATCH", SRC, json={"name": "Changed", "description": "changed"})
    api.run("PUT", f"{SRC}/disable")
    api.post(f"{SRC}/rotate-secret")
    secret_url = api.get(SRC).json["http"]["url"]  # type: ignore[index]
    task = api.run("PUT", f"{SRC}/versions/1/rollback")
    assert task["type"] == "api.rollback.sourceVersion"
    assert task["result"] == "Source version was rolled back successfully."
    body = api.get(SRC).json
    assert body is not None
    # Name and description come back; the secret and the disabled state stay as they are.
    assert body["name"] == "My Source" and body["description"] == ""
    assert body["http"]["url"] == secret_url
    assert "disabled" in body
    assert body["version"]["number"] == 4
    assert body["version"]["description"] == 'Rollback to version "1".'
    assert [v["number"] for v in _versions(api, SRC)["versions"]] == [1, 2, 3, 4]
    # Enabled again, the state equals version 1 and so does the hash.
    api.run("PUT", f"{SRC}/enable")
    assert api.get(SRC).json["version"]["hash"] == source["version"]["hash"]  # type: ignore[index]


def test_sink_versions_and_rollback(api: Api, source: dict[str, Any]) -> None:
    sink = api.create_sink("my-source", columns=[{"type": "body", "name": "b"}])
    api.run(
        "PATCH",
        SINK,
        json={"table": {"tableId": "in.c-bucket.ips", "mapping": {"columns": [{"type": "ip", "name": "ip"}]}}},
    )
    api.run(
        "PATCH",
        f"{SINK}/settings",
        json={"settings": [{"key": "storage.level.target.import.trigger.count", "value": 5}]},
    )
    body = _versions(api, SINK)
    assert [v["description"] for v in body["versions"]] == ["New sink.", "Updated.", "Updated settings."]
    assert api.get(f"{SINK}/versions/1").json == sink["version"]
    task = api.run("PUT", f"{SINK}/versions/1/rollback")
    assert task["type"] == "api.rollback.sinkVersion"
    assert task["result"] == "Sink version was rolled back successfully."
    rolled = api.get(SINK).json
    assert rolled is not None
    assert rolled["table"] == sink["table"]
    assert rolled["version"]["number"] == 4 and rolled["version"]["hash"] == sink["version"]["hash"]
    settings = api.get(f"{SINK}/settings").json["settings"]  # type: ignore[index]
    assert not any(s["overwritten"] for s in settings)
    assert api.get(f"{SINK}/versions/7").json == error(
        404, "sinkVersionNotFound", 'Sink version "my-sink/0000000007" not found in the source.'
    )
    assert api.put(f"{SINK}/versions/12345/rollback").json == error(
        404, "sinkVersionNotFound", 'Sink version "my-sink/0000012345" not found in the source.'
    )


def test_history_keeps_the_last_1000_versions(
    api: Api, source: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pushstream.catalog.postgresql as pg_catalog
    import pushstream.catalog.sqlite as sqlite_catalog

    monkeypatch.setattr(sqlite_catalog, "MAX_VERSIONS", 3)
    monkeypatch.setattr(pg_catalog, "MAX_VERSIONS", 3)  # PUSHSTREAM_TEST_CLUSTER=1
    for i in range(4):
        api.run("PATCH", SRC, json={"description": f"d{i}"})
    body = _versions(api, SRC)
    assert [v["number"] for v in body["versions"]] == [3, 4, 5]
    assert body["page"]["totalCount"] == 3
    assert api.get(f"{SRC}/versions/1").json == error(
        404, "sourceVersionNotFound", 'Source version "my-source/0000000001" not found in the branch.'
    )
    assert api.put(f"{SRC}/versions/2/rollback").status_code == 404
    api.run("PUT", f"{SRC}/versions/3/rollback")
    assert api.get(SRC).json["description"] == "d1"  # type: ignore[index]


def test_rollback_to_a_pruned_version_fails_the_task(api: Api, source: dict[str, Any]) -> None:
    api.run("PATCH", SRC, json={"description": "x"})
    runner = api.services.runner
    original = runner.start

    def prune_first(task_type: str, key: Any, outputs: Any, apply: Any, **options: Any) -> Any:
        def wrapped(tx: Any, task_id: str) -> Any:
            raw_execute(tx, "DELETE FROM versions WHERE number = 1")
            return apply(tx, task_id)

        return original(task_type, key, outputs, wrapped, **options)

    runner.start = prune_first  # type: ignore[method-assign]
    try:
        response = api.put(f"{SRC}/versions/1/rollback")
    finally:
        runner.start = original  # type: ignore[method-assign]
    task = api.wait_task(response.json)  # type: ignore[arg-type]
    assert task["status"] == "error"
    assert task["error"] == 'Source version "my-source/0000000001" not found in the branch.'
    assert api.get(f"{SRC}/versions/1").status_code == 200
