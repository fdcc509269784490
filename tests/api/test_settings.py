"""Settings of sources and sinks: the keys, validation, protected keys, resets, inheritance and operator overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apitest import BASE, Api, error, make_app

from pushstream.app import close_app
from pushstream.store import settings as registry

SRC = f"{BASE}/my-source"
SINK = f"{SRC}/sinks/my-sink"
COUNT = "storage.level.staging.upload.trigger.count"
SIZE = "storage.level.staging.upload.trigger.size"
INTERVAL = "storage.level.staging.upload.trigger.interval"
IMPORT_INTERVAL = "storage.level.target.import.trigger.interval"
WAIT = "storage.level.local.encoding.sync.wait"
MODE = "storage.level.local.encoding.sync.mode"

DEFAULTS = [
    (WAIT, "bool", True, None, False),
    (COUNT, "int", 10000, "min=1,max=10000000", False),
    (SIZE, "string", "5MB", "minBytes=100B,maxBytes=50MB", False),
    (INTERVAL, "string", "30s", "minDuration=1s,maxDuration=30m0s", False),
    ("storage.level.target.import.trigger.count", "int", 50000, "min=1,max=10000000", False),
    ("storage.level.target.import.trigger.size", "string", "50MB", "minBytes=100B,maxBytes=500MB", False),
    (IMPORT_INTERVAL, "string", "1m0s", "minDuration=30s,maxDuration=24h0m0s", False),
    (MODE, "string", "disk", "oneof=disk cache", True),
    ("storage.level.local.encoding.sync.checkInterval", "string", "5ms", "minDuration=1ms,maxDuration=30s", True),
    ("storage.level.local.encoding.sync.countTrigger", "int", 10000, "min=1,max=1000000", True),
    (
        "storage.level.local.encoding.sync.uncompressedBytesTrigger",
        "string",
        "1MB",
        "minBytes=100B,maxBytes=500MB",
        True,
    ),
    ("storage.level.local.encoding.sync.intervalTrigger", "string", "50ms", "minDuration=10ms,maxDuration=30s", True),
]


def _settings(api: Api, path: str) -> dict[str, dict[str, Any]]:
    response = api.get(f"{path}/settings")
    assert response.status_code == 200, response.json
    body = response.json
    assert body is not None and list(body) == ["settings"]
    return {item["key"]: item for item in body["settings"]}


def _patch(api: Api, path: str, *pairs: tuple[str, Any], description: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"settings": [{"key": k, "value": v} for k, v in pairs]}
    if description is not None:
        body["changeDescription"] = description
    return api.run("PATCH", f"{path}/settings", json=body)


def test_default_settings(api: Api, source: dict[str, Any]) -> None:
    response = api.get(f"{SRC}/settings")
    items = response.json["settings"]  # type: ignore[index]
    assert [item["key"] for item in items] == [d[0] for d in DEFAULTS]
    for item, (key, type_, default, validation, protected) in zip(items, DEFAULTS, strict=True):
        expected = {
            "key": key,
            "type": type_,
            "description": registry.SETTINGS_BY_KEY[key].description,
            "value": default,
            "defaultValue": default,
            "overwritten": False,
            "protected": protected,
        }
        if validation is not None:
            expected["validation"] = validation
        assert item == expected
        assert item["description"]


def test_patch_source_settings(api: Api, source: dict[str, Any]) -> None:
    task = _patch(api, SRC, (COUNT, 500), (INTERVAL, "90s"), (SIZE, "1536 kb"), (WAIT, False))
    assert task["type"] == "update.source.settings"
    assert task["result"] == "Source settings have been updated successfully."
    assert task["taskId"].startswith("api.update.source.settings/1/my-source/")
    items = _settings(api, SRC)
    assert items[COUNT] | {"description": ""} == {
        "key": COUNT,
        "type": "int",
        "description": "",
        "value": 500,
        "defaultValue": 10000,
        "overwritten": True,
        "protected": False,
        "validation": "min=1,max=10000000",
    }
    # Values are normalised: durations as Go prints them, sizes in the largest exact unit.
    assert items[INTERVAL]["value"] == "1m30s"
    assert items[SIZE]["value"] == "1536KB"
    assert items[WAIT]["value"] is False
    source_now = api.get(SRC).json
    assert source_now is not None
    assert source_now["version"]["number"] == 2 and source_now["version"]["description"] == "Updated settings."
    assert api.services.store.effective_settings(1, "my-source") | {} == {
        **registry.resolve(),
        COUNT: 500,
        INTERVAL: 90.0,
        SIZE: 1536 * 1024,
        WAIT: False,
    }


def test_null_resets_and_unchanged_patch_makes_no_version(api: Api, source: dict[str, Any]) -> None:
    _patch(api, SRC, (COUNT, 7), description="Tune.")
    assert api.get(SRC).json["version"]["description"] == "Tune."  # type: ignore[index]
    _patch(api, SRC, (COUNT, 7))
    _patch(api, SRC)
    assert api.get(SRC).json["version"]["number"] == 2  # type: ignore[index]
    _patch(api, SRC, (COUNT, None))
    item = _settings(api, SRC)[COUNT]
    assert item["value"] == 10000 and item["overwritten"] is False
    assert api.get(SRC).json["version"]["number"] == 3  # type: ignore[index]
    # Resetting what is not set changes nothing.
    _patch(api, SRC, (COUNT, None))
    assert api.get(SRC).json["version"]["number"] == 3  # type: ignore[index]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            [(COUNT, 0)],
            'Invalid settings value: "storage.level.staging.upload.trigger.count" must be at least 1, found 0.',
        ),
        (
            [(COUNT, 10_000_001)],
            'Invalid settings value: "storage.level.staging.upload.trigger.count" must be at most 10000000, '
            "found 10000001.",
        ),
        (
            [(COUNT, "5")],
            'Invalid settings value: "storage.level.staging.upload.trigger.count" expects an integer, found a string.',
        ),
        (
            [(COUNT, True)],
            'Invalid settings value: "storage.level.staging.upload.trigger.count" expects an integer, found a boolean.',
        ),
        (
            [(COUNT, 1.5)],
            'Invalid settings value: "storage.level.staging.upload.trigger.count" expects an integer, found a number.',
        ),
        (
            [(WAIT, "true")],
            'Invalid settings value: "storage.level.local.encoding.sync.wait" expects a boolean, found a string.',
        ),
        (
            [(INTERVAL, 30)],
            'Invalid settings value: "storage.level.staging.upload.trigger.interval" expects a string, found a number.',
        ),
        (
            [(INTERVAL, "soon")],
            'Invalid settings value: "storage.level.staging.upload.trigger.interval": invalid duration "soon".',
        ),
        (
            [(INTERVAL, "500ms")],
            'Invalid settings value: "storage.level.staging.upload.trigger.interval" must be at least 1s, found 500ms.',
        ),
        (
            [(INTERVAL, "31m")],
            'Invalid settings value: "storage.level.staging.upload.trigger.interval" must be at most 30m0s, found 31m.',
        ),
        (
            [(SIZE, "5 parsecs")],
            'Invalid settings value: "storage.level.staging.upload.trigger.size": invalid size "5 parsecs".',
        ),
        (
            [(SIZE, "99B")],
            'Invalid settings value: "storage.level.staging.upload.trigger.size" must be at least 100B, found 99B.',
        ),
        (
            [(SIZE, "51MB")],
            'Invalid settings value: "storage.level.staging.upload.trigger.size" must be at most 50MB, found 51MB.',
        ),
        ([("no.such.key", 1)], 'Unknown settings keys: "no.such.key".'),
    ],
)
def test_invalid_settings_are_400(api: Api, source: dict[str, Any], pairs: list[tuple[str, Any]], message: str) -> None:
    for path in (SRC, SINK):
        if path == SINK and api.get(SINK).status_code == 404:
            api.create_sink("my-source")
        response = api.patch(f"{path}/settings", json={"settings": [{"key": k, "value": v} for k, v in pairs]})
        assert response.status_code == 400
        assert response.json == error(400, "badRequest", message)


@pytest.mark.parametrize(
    ("body", "name", "message"),
    [
        ({"settings": {}}, "badRequest", '"body.settings" must be an array, found object.'),
        ({"settings": None}, "badRequest", '"body.settings" must be an array, found null.'),
        ({"settings": [1]}, "badRequest", '"body.settings[0]" must be an object, found number.'),
        ({"settings": [{"value": 1}]}, "missingField", 'Missing required field "body.settings[0].key".'),
        (
            {"settings": [{"key": ""}]},
            "badRequest",
            '"body.settings[0].key" must be at least 1 characters long, found 0.',
        ),
        ({"changeDescription": 5}, "badRequest", '"body.changeDescription" must be a string, found number.'),
    ],
)
def test_malformed_settings_patch(
    api: Api, source: dict[str, Any], body: dict[str, Any], name: str, message: str
) -> None:
    response = api.patch(f"{SRC}/settings", json=body)
    assert response.status_code == 400
    assert response.json == error(400, name, message)


def test_protected_keys_are_403(api: Api, source: dict[str, Any]) -> None:
    api.create_sink("my-source")
    for path in (SRC, SINK):
        body = {"settings": [{"key": COUNT, "value": 5}, {"key": MODE, "value": "cache"}, {"key": MODE, "value": None}]}
        response = api.patch(f"{path}/settings", json=body)
        assert response.status_code == 403
        assert response.json == error(
            403, "forbidden", 'Cannot modify protected keys: "storage.level.local.encoding.sync.mode".'
        )
    # Nothing was changed.
    assert _settings(api, SRC)[COUNT]["overwritten"] is False


def test_sink_settings_override_source_settings(api: Api, source: dict[str, Any]) -> None:
    api.create_sink("my-source")
    _patch(api, SRC, (COUNT, 100), (INTERVAL, "10s"))
    items = _settings(api, SINK)
    # Inherited from the source: not overwritten by the sink, the source's value is its default.
    assert items[COUNT]["value"] == 100 and items[COUNT]["defaultValue"] == 100 and not items[COUNT]["overwritten"]
    task = _patch(api, SINK, (COUNT, 5))
    assert task["type"] == "update.sink.settings" and task["result"] == "Sink settings have been updated successfully."
    items = _settings(api, SINK)
    assert items[COUNT] | {"description": ""} == {
        "key": COUNT,
        "type": "int",
        "description": "",
        "value": 5,
        "defaultValue": 100,
        "overwritten": True,
        "protected": False,
        "validation": "min=1,max=10000000",
    }
    assert items[INTERVAL]["value"] == "10s"
    effective = api.services.store.effective_settings(1, "my-source", "my-sink")
    assert effective[COUNT] == 5 and effective[INTERVAL] == 10.0
    (ingest,) = api.services.store.list_sinks(1, "my-source")
    assert ingest.settings == effective
    # The source's own settings do not show the sink's override.
    assert _settings(api, SRC)[COUNT]["value"] == 100
    _patch(api, SINK, (COUNT, None))
    assert _settings(api, SINK)[COUNT]["value"] == 100


def test_operator_settings(tmp_path: Path) -> None:
    app = make_app(tmp_path / "d", settings={COUNT: "250", MODE: "cache", INTERVAL: "45s"})
    try:
        api = Api(app)
        api.create_source()
        api.create_sink("my-source")
        items = _settings(api, SRC)
        assert items[COUNT]["value"] == 250 and items[COUNT]["defaultValue"] == 250
        assert items[COUNT]["overwritten"] is False
        assert items[MODE]["value"] == "cache"
        assert items[INTERVAL]["value"] == "45s"
        _patch(api, SRC, (COUNT, 300))
        assert _settings(api, SINK)[COUNT]["defaultValue"] == 300
        assert api.services.store.effective_settings(1, "my-source", "my-sink")[MODE] == "cache"
    finally:
        close_app(app)


@pytest.mark.parametrize(
    ("text", "ns", "canonical"),
    [
        ("0", 0, "0s"),
        ("30s", 30 * registry.SECOND, "30s"),
        ("1m", registry.MINUTE, "1m0s"),
        ("90s", 90 * registry.SECOND, "1m30s"),
        ("1.5h", 90 * registry.MINUTE, "1h30m0s"),
        ("24h", 24 * registry.HOUR, "24h0m0s"),
        ("50ms", 50 * registry.MS, "50ms"),
        ("1.5ms", 1_500_000, "1.5ms"),
        ("2us", 2000, "2µs"),
        ("3µs", 3000, "3µs"),
        ("7ns", 7, "7ns"),
        ("1h2m3.25s", registry.HOUR + 2 * registry.MINUTE + 3_250_000_000, "1h2m3.25s"),
        (".5s", 500 * registry.MS, "500ms"),
    ],
)
def test_go_durations(text: str, ns: int, canonical: str) -> None:
    assert registry.parse_duration(text) == ns
    assert registry.format_duration(ns) == canonical
    assert registry.parse_duration(canonical) == ns


@pytest.mark.parametrize("text", ["", "s", "1", "-1s", "1x", "1s2", "1.s.", ".s", "1 s"])
def test_invalid_go_durations(text: str) -> None:
    with pytest.raises(registry.SettingValueError):
        registry.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size", "canonical"),
    [
        ("100B", 100, "100B"),
        ("5MB", 5 * 1024 * 1024, "5MB"),
        ("5mb", 5 * 1024 * 1024, "5MB"),
        ("256 KB", 256 * 1024, "256KB"),
        ("1GiB", 1024**3, "1GB"),
        ("1536KB", 1536 * 1024, "1536KB"),
        ("2048", 2048, "2KB"),
        ("1k", 1024, "1KB"),
    ],
)
def test_sizes(text: str, size: int, canonical: str) -> None:
    assert registry.parse_size(text) == size
    assert registry.format_size(size) == canonical


@pytest.mark.parametrize("text", ["", "MB", "-5MB", "1.5MB", "5 XB", "5iB"])
def test_invalid_sizes(text: str) -> None:
    with pytest.raises(registry.SettingValueError):
        registry.parse_size(text)
