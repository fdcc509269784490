"""Settings of sources and sinks: the keys, validation, protected keys, resets, inheritance and operator overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apitest import BASE, Api, error, make_app

from pushstream.app import close_app
from pushstream.catalog import settings as registry

SRC = f"{BASE}/my-source"
SINK = f"{SRC}/sinks/my-sink"
COUNT = "storage.level.staging.upload.trigger.count"
SIZE = "storage.level.staging.upload.trigger.size"
INTERVAL = "storage.level.staging.upload.trigger.interval"
IMPORT_INTERVAL = "storage.level.target.import.trigger.interval"
WAIT = "storage.level.local.encoding.sync.wait"
MODE = "storage.level.local.encoding.sync.mode"

# Every key Keboola lists, sorted by key: (key without "storage.level.", type, default, validation, protected).
DEFAULTS = [
    ("local.encoding.compression.gzip.blockSize", "string", "256KB", "required,minBytes=16kB,maxBytes=100MB", True),
    ("local.encoding.compression.gzip.concurrency", "int", 0, None, True),
    (
        "local.encoding.compression.gzip.implementation",
        "string",
        "parallel",
        "required,oneof=standard fast parallel",
        True,
    ),
    ("local.encoding.compression.gzip.level", "int", 1, "min=1,max=9", True),
    ("local.encoding.compression.type", "string", "gzip", "required,oneof=none gzip", True),
    ("local.encoding.encoder.concurrency", "int", 0, "min=0,max=256", True),
    ("local.encoding.encoder.type", "string", "csv", "required,oneof=csv", True),
    ("local.encoding.failedChunksThreshold", "int", 3, "required,min=1,max=100", True),
    ("local.encoding.inputBuffer", "string", "2MB", "maxBytes=16MB", True),
    ("local.encoding.maxChunkSize", "string", "512KB", "required,minBytes=64kB,maxBytes=1MB", True),
    ("local.encoding.sync.checkInterval", "string", "5ms", "required,minDuration=1ms,maxDuration=30s", True),
    ("local.encoding.sync.compressedBytesTrigger", "string", "256KB", "required,minBytes=100B,maxBytes=100MB", True),
    ("local.encoding.sync.countTrigger", "int", 10000, "required,min=1,max=1000000", True),
    ("local.encoding.sync.intervalTrigger", "string", "50ms", "required,minDuration=10ms,maxDuration=30s", True),
    ("local.encoding.sync.mode", "string", "disk", "required,oneof=disk cache", True),
    ("local.encoding.sync.uncompressedBytesTrigger", "string", "1MB", "required,minBytes=100B,maxBytes=500MB", True),
    ("local.encoding.sync.wait", "bool", True, None, False),
    ("local.volume.assignment.count", "int", 1, "required,min=1,max=100", True),
    ("local.volume.assignment.preferredTypes", "[]string", ["default"], "required,min=1", True),
    ("staging.upload.trigger.count", "int", 10000, "required,min=1,max=10000000", False),
    ("staging.upload.trigger.interval", "string", "30s", "required,minDuration=1s,maxDuration=30m", False),
    ("staging.upload.trigger.size", "string", "5MB", "required,minBytes=100B,maxBytes=50MB", False),
    ("target.import.trigger.count", "int", 50000, "required,min=1,max=10000000", False),
    ("target.import.trigger.expiration", "string", "30m0s", "required,minDuration=5m,maxDuration=45m", True),
    ("target.import.trigger.interval", "string", "1m0s", "required,minDuration=30s,maxDuration=24h", False),
    ("target.import.trigger.size", "string", "50MB", "required,minBytes=100B,maxBytes=500MB", False),
    ("target.import.trigger.slicesCount", "int", 100, "required,min=1,max=200", True),
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
    assert len(items) == 27
    assert [item["key"] for item in items] == ["storage.level." + d[0] for d in DEFAULTS]
    for item, (short_key, type_, default, validation, protected) in zip(items, DEFAULTS, strict=True):
        key = "storage.level." + short_key
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
    assert task["type"] == "api.update.sourceSettings"
    assert task["result"] == "Source settings have been updated successfully."
    assert task["taskId"].startswith("api.update.sourceSettings/1/my-source/")
    items = _settings(api, SRC)
    assert items[COUNT] | {"description": ""} == {
        "key": COUNT,
        "type": "int",
        "description": "",
        "value": 500,
        "defaultValue": 10000,
        "overwritten": True,
        "protected": False,
        "validation": "required,min=1,max=10000000",
    }
    # Values are normalised: durations as Go prints them, sizes in the largest exact unit.
    assert items[INTERVAL]["value"] == "1m30s"
    assert items[SIZE]["value"] == "1536KB"
    assert items[WAIT]["value"] is False
    source_now = api.get(SRC).json
    assert source_now is not None
    assert source_now["version"]["number"] == 2 and source_now["version"]["description"] == "Updated settings."
    assert api.services.catalog.effective_settings(1, "my-source") | {} == {
        **registry.resolve(),
        COUNT: 500,
        INTERVAL: 90.0,
        SIZE: 1536 * 1024,
        WAIT: False,
    }


def test_null_resets_and_every_patch_is_a_version(api: Api, source: dict[str, Any]) -> None:
    _patch(api, SRC, (COUNT, 7), description="Tune.")
    assert api.get(SRC).json["version"]["description"] == "Tune."  # type: ignore[index]
    # As in Keboola, a patch that changes no value (or an empty one) is a version too.
    _patch(api, SRC, (COUNT, 7))
    _patch(api, SRC)
    version = api.get(SRC).json["version"]  # type: ignore[index]
    assert version["number"] == 4 and version["description"] == "Updated settings."
    _patch(api, SRC, (COUNT, None))
    item = _settings(api, SRC)[COUNT]
    assert item["value"] == 10000 and item["overwritten"] is False
    assert api.get(SRC).json["version"]["number"] == 5  # type: ignore[index]
    versions = api.get(f"{SRC}/versions").json["versions"]  # type: ignore[index]
    assert [v["description"] for v in versions] == ["New source.", "Tune.", *["Updated settings."] * 3]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([(COUNT, 0)], f'Invalid "{COUNT}" value 0: must be at least 1.'),
        ([(COUNT, 10_000_001)], f'Invalid "{COUNT}" value 10000001: must be at most 10000000.'),
        ([(COUNT, "5")], f'Invalid "{COUNT}" value "5": expected an integer.'),
        ([(COUNT, True)], f'Invalid "{COUNT}" value true: expected an integer.'),
        ([(COUNT, 1.5)], f'Invalid "{COUNT}" value 1.5: expected an integer.'),
        ([(WAIT, "true")], f'Invalid "{WAIT}" value "true": expected a boolean.'),
        ([(INTERVAL, 30)], f'Invalid "{INTERVAL}" value 30: expected a string.'),
        ([(INTERVAL, "soon")], f'Invalid "{INTERVAL}": time: invalid duration "soon".'),
        ([(INTERVAL, "500ms")], f'Invalid "{INTERVAL}" value "500ms": must be at least 1s.'),
        ([(INTERVAL, "31m")], f'Invalid "{INTERVAL}" value "31m": must be at most 30m0s.'),
        ([(SIZE, "5 parsecs")], f'Invalid "{SIZE}" value "5 parsecs": invalid syntax.'),
        ([(SIZE, "99B")], f'Invalid "{SIZE}" value "99B": must be at least 100B.'),
        ([(SIZE, "51MB")], f'Invalid "{SIZE}" value "51MB": must be at most 50MB.'),
        # Every invalid value is listed, in the order of Keboola's configuration structure.
        (
            [(INTERVAL, "foo"), (SIZE, "bar")],
            f'- Invalid "{SIZE}" value "bar": invalid syntax.\n- Invalid "{INTERVAL}": time: invalid duration "foo".',
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
        ({"settings": {}}, "invalidFieldType", 'Invalid value {} for "body.settings", must be a array.'),
        ({"settings": None}, "invalidFieldType", 'Invalid value <nil> for "body.settings", must be a array.'),
        ({"settings": [1]}, "invalidFieldType", 'Invalid value 1 for "body.settings[0]", must be a object.'),
        ({"settings": [{"value": 1}]}, "missingField", '"key" is missing from body.settings[0].'),
        (
            {"settings": [{"key": ""}]},
            "invalidLength",
            'Length of body.settings[0].key must be greater or equal than 1 but got value "" (len=0)',
        ),
        (
            {"changeDescription": 5},
            "invalidFieldType",
            'Invalid value 5 for "body.changeDescription", must be a string.',
        ),
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
    assert task["type"] == "api.update.sinkSettings"
    assert task["result"] == "Sink settings have been updated successfully."
    items = _settings(api, SINK)
    assert items[COUNT] | {"description": ""} == {
        "key": COUNT,
        "type": "int",
        "description": "",
        "value": 5,
        "defaultValue": 100,
        "overwritten": True,
        "protected": False,
        "validation": "required,min=1,max=10000000",
    }
    assert items[INTERVAL]["value"] == "10s"
    effective = api.services.catalog.effective_settings(1, "my-source", "my-sink")
    assert effective[COUNT] == 5 and effective[INTERVAL] == 10.0
    (ingest,) = api.services.catalog.list_sinks(1, "my-source")
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
        assert api.services.catalog.effective_settings(1, "my-source", "my-sink")[MODE] == "cache"
    finally:
        close_app(app)


PREFERRED = "storage.level.local.volume.assignment.preferredTypes"
COMPRESSION = "storage.level.local.encoding.compression.type"
GZIP_LEVEL = "storage.level.local.encoding.compression.gzip.level"
INPUT_BUFFER = "storage.level.local.encoding.inputBuffer"


def test_keys_without_effect_are_stored_validated_and_returned(tmp_path: Path) -> None:
    """Keboola's cluster tuning keys: the operator may set them, the API shows them, the
    data plane gets them in typed form (and ignores them)."""
    overrides = {PREFERRED: "ssd, hdd", COMPRESSION: "none", GZIP_LEVEL: "9", INPUT_BUFFER: "0"}
    app = make_app(tmp_path / "d", settings=overrides)
    try:
        api = Api(app)
        api.create_source()
        items = _settings(api, SRC)
        assert items[PREFERRED] | {"description": ""} == {
            "key": PREFERRED,
            "type": "[]string",
            "description": "",
            "value": ["ssd", "hdd"],
            "defaultValue": ["ssd", "hdd"],
            "overwritten": False,
            "protected": True,
            "validation": "required,min=1",
        }
        assert items[COMPRESSION]["value"] == "none"
        assert items[GZIP_LEVEL]["value"] == 9
        assert items[INPUT_BUFFER]["value"] == "0B"
        effective = api.services.catalog.effective_settings(1, "my-source")
        assert effective[PREFERRED] == ["ssd", "hdd"] and effective[INPUT_BUFFER] == 0
        # Protected like Keboola's: the API does not change them.
        response = api.patch(f"{SRC}/settings", json={"settings": [{"key": PREFERRED, "value": ["x"]}]})
        assert response.status_code == 403
    finally:
        close_app(app)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (PREFERRED, [], f'Invalid "{PREFERRED}" value []: must be at least 1 items'),
        (PREFERRED, [1], f'Invalid "{PREFERRED}" value [1]: expected an array of strings'),
        (COMPRESSION, "zstd", f'Invalid "{COMPRESSION}" value "zstd": must be one of "none", "gzip"'),
        (GZIP_LEVEL, 0, f'Invalid "{GZIP_LEVEL}" value 0: must be at least 1'),
        (GZIP_LEVEL, 10, f'Invalid "{GZIP_LEVEL}" value 10: must be at most 9'),
        (INPUT_BUFFER, "17MB", f'Invalid "{INPUT_BUFFER}" value "17MB": must be at most 16MB'),
        (
            "storage.level.local.encoding.maxChunkSize",
            "1KB",
            'Invalid "storage.level.local.encoding.maxChunkSize" value "1KB": must be at least 64KB',
        ),
        (
            "storage.level.target.import.trigger.expiration",
            "1h",
            'Invalid "storage.level.target.import.trigger.expiration" value "1h": must be at most 45m0s',
        ),
    ],
)
def test_bounds_of_keys_without_effect(key: str, value: Any, message: str) -> None:
    definition = registry.SETTINGS_BY_KEY[key]
    with pytest.raises(registry.SettingValueError) as raised:
        definition.parse(value)
    assert str(raised.value) == message


def test_every_key_has_a_description_and_keboola_order() -> None:
    assert len(registry.SETTINGS) == 27
    assert all(d.description for d in registry.SETTINGS)
    # Unprotected keys are exactly Keboola's user-modifiable ones, and all of them take effect.
    unprotected = [d.key for d in registry.SETTINGS if not d.protected]
    assert sorted(unprotected) == sorted(["storage.level." + d[0] for d in DEFAULTS if not d[4]])
    assert all(registry.SETTINGS_BY_KEY[key].effective for key in unprotected)


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
