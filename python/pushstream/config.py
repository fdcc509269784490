"""Configuration of a pushstream server, from command-line flags and environment variables.

Precedence: flag > environment variable > default. Each field of
:class:`ServerConfig` is a flag of ``pushstream serve`` named like it (``max_record_size``
→ ``--max-record-size``) and an environment variable (:func:`env_variable`:
``PUSHSTREAM_MAX_RECORD_SIZE``); ``pushstream serve --help`` lists them with the
defaults of the fields.

``--setting``/``PUSHSTREAM_SETTINGS`` are the operator's overrides of the settings of
every source and sink (see :mod:`pushstream.catalog.settings`), protected keys
included; flags win over the JSON object key by key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from pushstream._core import DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_RECORD_BYTES, MAX_RECORD_BYTES_LIMIT
from pushstream.catalog.settings import SettingValueError, parse_operator_settings
from pushstream.errors import ConfigError
from pushstream.storage.staging import check_staging_url
from pushstream.targets import target_kind
from pushstream.targets.base import TargetError

ENV_PREFIX = "PUSHSTREAM_"
#: The ways ``serve`` receives requests (see :attr:`ServerConfig.front`).
FRONTS = ("guarded", "direct")
#: What a node name may be: it starts the ids of the node's slice parts (file names, object keys).
NODE_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}")


@dataclass(frozen=True)
class ServerConfig:
    """Everything a server process needs to know; :mod:`pushstream.wiring` builds its components from it."""

    data_dir: Path = Path("pushstream-data")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    project_id: int = 1
    default_branch_id: int = 1
    api_public_url: str | None = None
    source_public_url: str | None = None
    api_token: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    threads: int = 64
    target: str | None = None
    max_record_size: int = DEFAULT_MAX_RECORD_BYTES
    max_batch_size: int = DEFAULT_MAX_BATCH_BYTES
    max_header_size: int = 64 << 10
    trust_proxy: bool = False
    import_retry_base: float = 120.0
    #: Imports at once, into different tables (``None``: 1 into SQLite, 4 into
    #: PostgreSQL; see :func:`pushstream.coordinator.pipeline.default_import_concurrency`).
    import_concurrency: int | None = None
    #: Seconds from the end of the headers until the whole body must have arrived.
    body_timeout: float = 60.0
    #: Seconds an open connection may take to send (the rest of) request headers,
    #: also between the requests of a keep-alive connection.
    idle_timeout: float = 75.0
    #: Ingest requests received or processed at once by one worker.
    max_ingest_requests: int = 1024
    #: How workers receive requests: ``guarded`` (bodies on the event loop, with the
    #: body timeout, the ingest cap and exact bodies) or ``direct`` (the WSGI server
    #: calls the app; faster, for a reverse proxy that buffers whole bodies).
    front: str = "guarded"
    #: Shared staging of every node's slices: ``s3://bucket/prefix`` or
    #: ``file:///path`` (default: ``staging/`` in the data dir).
    staging: str | None = None
    #: The PostgreSQL control plane of a cluster (``postgresql://...``, schema from
    #: its ``schema`` parameter, default ``pushstream``): the catalog and the storage
    #: state live there instead of ``state.sqlite`` (:mod:`pushstream.wiring`).
    cluster: str | None = None
    #: This node's name among the nodes that share staging (default: kept in
    #: ``<data dir>/node-name``, made from the host name once).
    node_name: str | None = None
    #: Write one JSON line per request to stdout (time, method, path without the
    #: secret, status, bytes, duration, client IP).
    access_log: bool = False
    #: A bearer token ``GET /metrics`` requires (``None``: open, as Prometheus scrapes by default).
    metrics_token: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        for name in (
            "port",
            "workers",
            "project_id",
            "default_branch_id",
            "threads",
            "max_record_size",
            "max_batch_size",
            "max_header_size",
            "max_ingest_requests",
            "import_concurrency",
        ):
            value = getattr(self, name)
            if value is None and name == "import_concurrency":
                continue  # by the target's kind
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "port" else 1):
                raise ConfigError(f"{name} must be a positive integer, found {value!r}")
        if self.max_record_size > MAX_RECORD_BYTES_LIMIT:
            limit = MAX_RECORD_BYTES_LIMIT >> 20
            raise ConfigError(f"max_record_size must be at most {limit}MB, found {self.max_record_size} bytes")
        if self.max_header_size > 1 << 20:
            raise ConfigError(f"max_header_size must be at most 1MB, found {self.max_header_size} bytes")
        if self.max_batch_size < self.max_record_size:
            raise ConfigError("max_batch_size must be at least max_record_size")
        for name in ("import_retry_base", "body_timeout", "idle_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, found {getattr(self, name)}")
        if self.front not in FRONTS:
            raise ConfigError(f'front must be one of {", ".join(FRONTS)}, found "{self.front}"')
        try:
            target_kind(self.target)
        except TargetError:
            raise ConfigError(f'target must be sqlite:///path or postgresql://..., found "{self.target}"') from None
        if self.cluster is not None and not self.cluster.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f'cluster must be a postgresql:// or postgres:// URL, found "{self.cluster}"')
        if self.port > 65535:
            raise ConfigError(f"port must be at most 65535, found {self.port}")
        for name in ("api_public_url", "source_public_url"):
            url = getattr(self, name)
            if url is not None:
                if not url.startswith(("http://", "https://")):
                    raise ConfigError(f'{name} must be an http:// or https:// URL, found "{url}"')
                object.__setattr__(self, name, url.rstrip("/"))
        if self.staging is not None:
            try:
                object.__setattr__(self, "staging", check_staging_url(self.staging))
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if self.node_name is not None and not NODE_NAME.fullmatch(self.node_name):
            raise ConfigError(f'node_name must be 1-63 letters, digits, "_" or "-", found "{self.node_name}"')
        try:
            object.__setattr__(self, "settings", parse_operator_settings(self.settings))
        except SettingValueError as exc:
            raise ConfigError(f"invalid operator setting: {exc}") from None

    @property
    def state_path(self) -> Path:
        """The catalog file, ``<data dir>/state.sqlite``."""
        return self.data_dir / "state.sqlite"

    @property
    def api_url(self) -> str:
        """The public base URL of the API (no trailing slash)."""
        if self.api_public_url:
            return self.api_public_url
        host = self.host
        if host in ("", "0.0.0.0", "::", "[::]"):
            host = "localhost"
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def source_url(self) -> str:
        """The public base URL of sources (``<source url>/stream/<projectId>/<sourceId>/<secret>``)."""
        return self.source_public_url or self.api_url

    def to_json(self) -> str:
        """Serialised for worker processes (see :meth:`from_json`)."""
        data = asdict(self)
        data["data_dir"] = str(self.data_dir)
        data["settings"] = dict(self.settings)
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        data = orjson.loads(text)
        data["data_dir"] = Path(data["data_dir"])
        return cls(**data)

    def with_overrides(self, **values: Any) -> ServerConfig:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def env_variable(field_name: str) -> str:
    """The environment variable of a :class:`ServerConfig` field (``port`` → ``PUSHSTREAM_PORT``)."""
    return ENV_PREFIX + field_name.upper()


def parse_size_flag(name: str, text: str) -> int:
    """``1MB``, ``512KB``, ``1048576`` → bytes (binary units, as the settings use)."""
    units = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
    t = text.strip().upper()
    for unit in ("KB", "MB", "GB", "B"):
        if t.endswith(unit) and t[: -len(unit)].strip().isdigit():
            return int(t[: -len(unit)]) * units[unit]
    if t.isdigit():
        return int(t)
    raise ConfigError(f'{name} must be a size like 1MB or 512KB, found "{text}"')


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f'{ENV_PREFIX}{name} must be an integer, found "{text}"') from None


def parse_setting_flags(flags: Iterable[str]) -> dict[str, str]:
    """``["key=value", ...]`` → ``{"key": "value"}`` (values are validated later)."""
    result: dict[str, str] = {}
    for flag in flags:
        key, sep, value = flag.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f'a setting must look like KEY=VALUE, found "{flag}"')
        result[key.strip()] = value.strip()
    return result


def load_config(
    env: Mapping[str, str] | None = None,
    *,
    setting_flags: Iterable[str] = (),
    **flags: Any,
) -> ServerConfig:
    """The server configuration from environment variables (``env``, default
    ``os.environ``) overridden by flags (keyword arguments named like the fields of
    :class:`ServerConfig`; ``None`` means "not given"). Raises :class:`ConfigError`."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}

    def get(name: str) -> str | None:
        return env.get(env_variable(name)) or None

    if (v := get("DATA_DIR")) is not None:
        values["data_dir"] = Path(v)
    if (v := get("HOST")) is not None:
        values["host"] = v
    for field_name in ("port", "workers", "project_id", "default_branch_id"):
        if (v := get(field_name.upper())) is not None:
            values[field_name] = _int(field_name.upper(), v)
    for field_name in ("max_record_size", "max_batch_size", "max_header_size"):
        if (v := get(field_name.upper())) is not None:
            values[field_name] = parse_size_flag(field_name.upper(), v)
    if (v := get("THREADS")) is not None:
        values["threads"] = _int("THREADS", v)
    for field_name in ("trust_proxy", "access_log"):
        if (v := get(field_name.upper())) is not None:
            values[field_name] = v.strip().lower() in ("1", "true", "yes", "on")
    for field_name in ("import_retry_base", "body_timeout", "idle_timeout"):
        if (v := get(field_name.upper())) is not None:
            try:
                values[field_name] = float(v)
            except ValueError:
                raise ConfigError(
                    f'{ENV_PREFIX}{field_name.upper()} must be a number of seconds, found "{v}"'
                ) from None
    if (v := get("MAX_INGEST_REQUESTS")) is not None:
        values["max_ingest_requests"] = _int("MAX_INGEST_REQUESTS", v)
    if (v := get("IMPORT_CONCURRENCY")) is not None:
        values["import_concurrency"] = _int("IMPORT_CONCURRENCY", v)
    for field_name in (
        "api_public_url",
        "source_public_url",
        "api_token",
        "target",
        "front",
        "cluster",
        "staging",
        "node_name",
        "metrics_token",
    ):
        if (v := get(field_name.upper())) is not None:
            values[field_name] = v
    settings: dict[str, Any] = {}
    if (v := get("SETTINGS")) is not None:
        try:
            parsed = orjson.loads(v)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{ENV_PREFIX}SETTINGS is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise ConfigError(f"{ENV_PREFIX}SETTINGS must be a JSON object of settings keys and values")
        settings.update(parsed)
    settings.update(parse_setting_flags(setting_flags))
    values.update({k: v for k, v in flags.items() if v is not None})
    values["settings"] = settings
    return ServerConfig(**values)
