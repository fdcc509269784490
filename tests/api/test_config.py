"""Server configuration from environment variables and flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from pushstream.config import ServerConfig, load_config, parse_setting_flags
from pushstream.errors import ConfigError


def test_defaults() -> None:
    config = load_config({})
    assert config == ServerConfig()
    assert config.data_dir == Path("pushstream-data")
    assert config.state_path == Path("pushstream-data/state.sqlite")
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 8000, 1)
    assert (config.project_id, config.default_branch_id) == (1, 1)
    assert config.api_url == "http://127.0.0.1:8000"
    assert config.source_url == "http://127.0.0.1:8000"
    assert config.api_token is None
    assert dict(config.settings) == {}


def test_environment_and_flags() -> None:
    env = {
        "PUSHSTREAM_DATA_DIR": "/var/lib/ps",
        "PUSHSTREAM_HOST": "0.0.0.0",
        "PUSHSTREAM_PORT": "9000",
        "PUSHSTREAM_WORKERS": "3",
        "PUSHSTREAM_PROJECT_ID": "42",
        "PUSHSTREAM_DEFAULT_BRANCH_ID": "7",
        "PUSHSTREAM_API_TOKEN": "secret",
        "PUSHSTREAM_SETTINGS": '{"storage.level.staging.upload.trigger.count": 5, '
        '"storage.level.local.encoding.sync.mode": "cache"}',
    }
    config = load_config(env)
    assert config.data_dir == Path("/var/lib/ps")
    assert (config.host, config.port, config.workers, config.project_id, config.default_branch_id) == (
        "0.0.0.0",
        9000,
        3,
        42,
        7,
    )
    assert config.api_token == "secret"
    assert config.api_url == "http://localhost:9000"
    assert dict(config.settings) == {
        "storage.level.staging.upload.trigger.count": 5,
        "storage.level.local.encoding.sync.mode": "cache",
    }
    flagged = load_config(
        env,
        setting_flags=[
            "storage.level.staging.upload.trigger.count=9",
            "storage.level.staging.upload.trigger.interval=90s",
        ],
        port=9100,
        host=None,
        api_public_url="https://api.example.com/",
        source_public_url="https://in.example.com",
    )
    assert flagged.port == 9100 and flagged.host == "0.0.0.0"
    assert flagged.api_url == "https://api.example.com"
    assert flagged.source_url == "https://in.example.com"
    assert dict(flagged.settings) == {
        "storage.level.staging.upload.trigger.count": 9,
        "storage.level.local.encoding.sync.mode": "cache",
        "storage.level.staging.upload.trigger.interval": "1m30s",
    }


def test_public_url_of_ipv6_host() -> None:
    assert ServerConfig(host="::1", port=1).api_url == "http://[::1]:1"
    assert ServerConfig(host="::", port=1).api_url == "http://localhost:1"


def test_round_trip_for_workers() -> None:
    config = load_config({"PUSHSTREAM_API_TOKEN": "t"}, setting_flags=["storage.level.local.encoding.sync.wait=false"])
    assert ServerConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("env", "flags", "message"),
    [
        ({"PUSHSTREAM_PORT": "http"}, [], 'PUSHSTREAM_PORT must be an integer, found "http"'),
        ({"PUSHSTREAM_PORT": "70000"}, [], "port must be at most 65535, found 70000"),
        ({"PUSHSTREAM_PROJECT_ID": "0"}, [], "project_id must be a positive integer, found 0"),
        (
            {"PUSHSTREAM_API_PUBLIC_URL": "example.com"},
            [],
            'api_public_url must be an http:// or https:// URL, found "example.com"',
        ),
        ({"PUSHSTREAM_SETTINGS": "{"}, [], "PUSHSTREAM_SETTINGS is not valid JSON"),
        ({"PUSHSTREAM_SETTINGS": "[]"}, [], "PUSHSTREAM_SETTINGS must be a JSON object"),
        ({}, ["novalue"], 'a setting must look like KEY=VALUE, found "novalue"'),
        ({}, ["nope=1"], 'invalid operator setting: unknown key "nope"'),
        (
            {},
            ["storage.level.staging.upload.trigger.count=0"],
            'invalid operator setting: Invalid "storage.level.staging.upload.trigger.count" value 0: '
            "must be at least 1",
        ),
    ],
)
def test_invalid_configuration(env: dict[str, str], flags: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_config(env, setting_flags=flags)


def test_setting_flags() -> None:
    assert parse_setting_flags(["a = b", "c=d=e"]) == {"a": "b", "c": "d=e"}
