"""The options of ``serve`` against slow and hostile clients, from flags and environment."""

from __future__ import annotations

import subprocess

import pytest

from pushstream.config import ServerConfig, load_config
from pushstream.errors import ConfigError
from serverprocess import PUSHSTREAM


def test_defaults() -> None:
    config = load_config({})
    assert (config.body_timeout, config.idle_timeout, config.max_ingest_requests) == (60.0, 75.0, 1024)


def test_environment_and_flags() -> None:
    env = {"PUSHSTREAM_BODY_TIMEOUT": "2.5", "PUSHSTREAM_IDLE_TIMEOUT": "9", "PUSHSTREAM_MAX_INGEST_REQUESTS": "7"}
    config = load_config(env)
    assert (config.body_timeout, config.idle_timeout, config.max_ingest_requests) == (2.5, 9.0, 7)
    assert load_config(env, body_timeout=4.0).body_timeout == 4.0
    assert ServerConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PUSHSTREAM_BODY_TIMEOUT": "soon"}, "PUSHSTREAM_BODY_TIMEOUT must be a number of seconds"),
        ({"PUSHSTREAM_IDLE_TIMEOUT": "0"}, "idle_timeout must be a positive number of seconds"),
        ({"PUSHSTREAM_MAX_INGEST_REQUESTS": "0"}, "max_ingest_requests must be a positive integer"),
    ],
)
def test_invalid_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env)


def test_help_names_the_options() -> None:
    result = subprocess.run([*PUSHSTREAM, "serve", "--help"], capture_output=True, text=True, check=True)
    for option in ("--body-timeout", "--idle-timeout", "--max-ingest-requests"):
        assert option in result.stdout
