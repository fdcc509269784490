"""The settings of sources and sinks: keys, types, defaults, bounds and the
inheritance ``defaults < operator config < source overrides < sink overrides``.

Three representations of a value are used:

* **API form** (what ``GET .../settings`` shows and ``PATCH`` accepts, and what the
  catalog keeps in a source's or sink's state): ``bool``, ``int``, a list of strings,
  or a string — durations as Go duration strings (``"30s"``, ``"1m0s"``), sizes as ``"5MB"``.
* **internal form**: ``bool``, ``int``, ``str``, ``list[str]``; durations as integer
  nanoseconds, sizes as integer bytes.
* **typed form** (what :func:`resolve` returns for the data plane): ``bool``,
  ``int``, ``str``, ``list[str]``; durations as ``float`` **seconds**, sizes as ``int`` **bytes**.

The keys are Keboola's 27, with its types, defaults, validation rules and
descriptions; those marked ``effective=False`` tune Keboola's own cluster and are
stored, validated and returned without effect in pushstream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

NS = 1
US = 1_000
MS = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

KB = 1024
MB = 1024 * KB
GB = 1024 * MB
TB = 1024 * GB

Kind = Literal["bool", "int", "duration", "size", "enum", "strings"]


class SettingValueError(ValueError):
    """A value that does not fit its key (wrong type or out of bounds)."""


_DURATION_UNITS = {"ns": NS, "us": US, "µs": US, "μs": US, "ms": MS, "s": SECOND, "m": MINUTE, "h": HOUR}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """A Go duration string (``"1m30s"``, ``"1.5h"``, ``"250ms"``) in nanoseconds.

    Raises :class:`SettingValueError` for anything Go's ``time.ParseDuration`` rejects
    (negative durations are rejected too: no setting accepts one).
    """
    s = text.strip()
    if s in ("0", "+0"):
        return 0
    if s.startswith("+"):
        s = s[1:]
    if not s or s.startswith("-"):
        raise SettingValueError(f'invalid duration "{text}"')
    total = 0
    pos = 0
    while pos < len(s):
        match = _DURATION_PART.match(s, pos)
        if not match or match.group(1) in ("", "."):
            raise SettingValueError(f'invalid duration "{text}"')
        number, unit = match.groups()
        whole, _, frac = number.partition(".")
        scale = _DURATION_UNITS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = match.end()
    return total


def _format_fraction(value: int, scale: int) -> str:
    whole, rest = divmod(value, scale)
    if not rest:
        return str(whole)
    digits = str(rest).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def format_duration(ns: int) -> str:
    """Nanoseconds as Go's ``Duration.String()`` (``"0s"``, ``"50ms"``, ``"30s"``, ``"1m0s"``, ``"24h0m0s"``)."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < US:
        return f"{sign}{ns}ns"
    if ns < MS:
        return f"{sign}{_format_fraction(ns, US)}µs"
    if ns < SECOND:
        return f"{sign}{_format_fraction(ns, MS)}ms"
    hours, rest = divmod(ns, HOUR)
    minutes, rest = divmod(rest, MINUTE)
    seconds = _format_fraction(rest, SECOND)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


_SIZE = re.compile(r"^\s*([0-9]+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": KB, "m": MB, "g": GB, "t": TB}


def parse_size(text: str) -> int:
    """A size (``"5MB"``, ``"256KB"``, ``"100B"``, ``"1 GiB"``, ``"1024"``) in bytes; units are binary (1KB = 1024B)."""
    match = _SIZE.match(text)
    if not match or (not match.group(2) and match.group(3).lower() == "ib"):
        raise SettingValueError(f'invalid size "{text}"')
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def format_size(size: int) -> str:
    """Bytes in the largest unit that divides them exactly (``5242880`` → ``"5MB"``, ``1536`` → ``"1536B"``)."""
    if size == 0:
        return "0B"
    for unit, scale in (("TB", TB), ("GB", GB), ("MB", MB), ("KB", KB)):
        if size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


_RULE_KEYS = ("min", "max", "minDuration", "maxDuration", "minBytes", "maxBytes", "oneof")


@dataclass(frozen=True)
class SettingDef:
    """One settings key: its type, default, Keboola's validation rule and whether
    only the operator may change it. ``validation`` is the rule as the API shows it
    (``required,min=1,max=100``, ``required,minDuration=1s,maxDuration=30m``,
    ``maxBytes=16MB``, ``required,oneof=disk cache``); the bounds are read from it.
    ``effective`` is False for keys that pushstream stores, validates and returns
    but does not act on (Keboola's tuning of its own cluster; see docs/api.md)."""

    key: str
    kind: Kind
    default: Any
    description: str
    validation: str | None = None
    protected: bool = True
    effective: bool = True

    def _rules(self) -> dict[str, str]:
        rules: dict[str, str] = {}
        for part in (self.validation or "").split(","):
            name, _, value = part.partition("=")
            if name:
                rules[name] = value
        return rules

    @property
    def required(self) -> bool:
        """Go's ``required``: the value must not be zero (or empty)."""
        return "required" in self._rules()

    @property
    def minimum(self) -> int | None:
        rules = self._rules()
        for name, parse in (("min", int), ("minDuration", parse_duration), ("minBytes", parse_size)):
            if name in rules:
                return parse(rules[name])
        return None

    @property
    def maximum(self) -> int | None:
        rules = self._rules()
        for name, parse in (("max", int), ("maxDuration", parse_duration), ("maxBytes", parse_size)):
            if name in rules:
                return parse(rules[name])
        return None

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._rules().get("oneof", "").split())

    @property
    def api_type(self) -> str:
        """The ``type`` of the key in the API (``bool``, ``int``, ``string`` or ``[]string``)."""
        return {"bool": "bool", "int": "int", "strings": "[]string"}.get(self.kind, "string")

    def _invalid(self, value: Any, reason: str) -> SettingValueError:
        return SettingValueError(f'Invalid "{self.key}" value {_json(value)}: {reason}')

    def parse(self, value: Any, *, lenient: bool = False) -> Any:
        """Validates a value in API form and returns its internal form.

        ``lenient`` also accepts strings for ``bool``/``int``/``[]string`` keys
        (operator configuration from the command line); the API is strict.
        Raises :class:`SettingValueError` with Keboola's message.
        """
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if lenient and isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            raise self._invalid(value, "expected a boolean")
        if self.kind == "int":
            number: int
            if isinstance(value, int) and not isinstance(value, bool):
                number = value
            elif (isinstance(value, float) and value.is_integer()) or (
                lenient and isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value)
            ):
                number = int(value)
            else:
                raise self._invalid(value, "expected an integer")
            self._check(number, number, str)
            return number
        if self.kind == "strings":
            if lenient and isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise self._invalid(value, "expected an array of strings")
            self._check(len(value), value, lambda n: f"{n} items")
            return list(value)
        if not isinstance(value, str):
            raise self._invalid(value, "expected a string")
        if self.kind == "enum":
            if value not in self.choices:
                raise self._invalid(value, "must be one of " + ", ".join(f'"{c}"' for c in self.choices))
            return value
        if self.kind == "duration":
            try:
                parsed = parse_duration(value)
            except SettingValueError:
                raise SettingValueError(f'Invalid "{self.key}": time: invalid duration "{value}"') from None
            self._check(parsed, value, format_duration)
            return parsed
        try:
            parsed = parse_size(value)
        except SettingValueError:
            raise SettingValueError(f'Invalid "{self.key}" value "{value}": invalid syntax') from None
        self._check(parsed, value, format_size)
        return parsed

    def _check(self, number: int, shown: Any, fmt: Any) -> None:
        if self.required and number == 0 and self.minimum is None:
            raise self._invalid(shown, "a value is required")
        if self.minimum is not None and number < self.minimum:
            raise self._invalid(shown, f"must be at least {fmt(self.minimum)}")
        if self.maximum is not None and number > self.maximum:
            raise self._invalid(shown, f"must be at most {fmt(self.maximum)}")

    def to_api(self, internal: Any) -> Any:
        """Internal form → API form."""
        if self.kind == "duration":
            return format_duration(internal)
        if self.kind == "size":
            return format_size(internal)
        if self.kind == "strings":
            return list(internal)
        return internal

    def to_typed(self, internal: Any) -> Any:
        """Internal form → typed form (durations in seconds)."""
        if self.kind == "duration":
            return internal / SECOND
        if self.kind == "strings":
            return list(internal)
        return internal


def _json(value: Any) -> str:
    return orjson.dumps(value).decode() if _jsonable(value) else repr(value)


def _jsonable(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


_LOCAL = "storage.level.local."
_ENCODING = _LOCAL + "encoding."
_SYNC = _ENCODING + "sync."
_UPLOAD = "storage.level.staging.upload.trigger."
_IMPORT = "storage.level.target.import.trigger."

#: Every key, in the order of Keboola's configuration structure (errors are listed in
#: this order); ``GET .../settings`` lists them sorted by key.
SETTINGS: tuple[SettingDef, ...] = (
    SettingDef(
        _LOCAL + "volume.assignment.count",
        "int",
        1,
        "Volumes count simultaneously utilized per sink.",
        "required,min=1,max=100",
        effective=False,
    ),
    SettingDef(
        _LOCAL + "volume.assignment.preferredTypes",
        "strings",
        ["default"],
        "List of preferred volume types, start with the most preferred.",
        "required,min=1",
        effective=False,
    ),
    SettingDef(_ENCODING + "encoder.type", "enum", "csv", "Encoder type.", "required,oneof=csv", effective=False),
    SettingDef(
        _ENCODING + "encoder.concurrency",
        "int",
        0,
        "Concurrency of the format writer for the specified file type. 0 = auto = num of CPU cores",
        "min=0,max=256",
        effective=False,
    ),
    SettingDef(
        _ENCODING + "inputBuffer",
        "size",
        2 * MB,
        "Max size of the buffer before compression, if compression is enabled. 0 = disabled",
        "maxBytes=16MB",
        effective=False,
    ),
    SettingDef(
        _ENCODING + "maxChunkSize",
        "size",
        512 * KB,
        "Max size of a chunk sent over the network to a disk writer node.",
        "required,minBytes=64kB,maxBytes=1MB",
        effective=False,
    ),
    SettingDef(
        _ENCODING + "failedChunksThreshold",
        "int",
        3,
        "If the defined number of chunks cannot be sent, the pipeline is marked as not ready.",
        "required,min=1,max=100",
        effective=False,
    ),
    SettingDef(
        _ENCODING + "compression.type",
        "enum",
        "gzip",
        "Compression type.",
        "required,oneof=none gzip",
        effective=False,
    ),
    SettingDef(
        _ENCODING + "compression.gzip.level",
        "int",
        1,
        "GZIP compression level: 1-9.",
        "min=1,max=9",
        effective=False,
    ),
    SettingDef(
        _ENCODING + "compression.gzip.implementation",
        "enum",
        "parallel",
        "GZIP implementation: standard, fast, parallel.",
        "required,oneof=standard fast parallel",
        effective=False,
    ),
    SettingDef(
        _ENCODING + "compression.gzip.blockSize",
        "size",
        256 * KB,
        "GZIP parallel block size.",
        "required,minBytes=16kB,maxBytes=100MB",
        effective=False,
    ),
    SettingDef(
        _ENCODING + "compression.gzip.concurrency",
        "int",
        0,
        "GZIP parallel concurrency, 0 = auto.",
        effective=False,
    ),
    SettingDef(_SYNC + "mode", "enum", "disk", 'Sync mode: "cache" or "disk".', "required,oneof=disk cache"),
    SettingDef(
        _SYNC + "wait",
        "bool",
        True,
        "Wait for sync to disk OS cache or to disk hardware, depending on the mode.",
        protected=False,
    ),
    SettingDef(
        _SYNC + "checkInterval",
        "duration",
        5 * MS,
        "Minimal interval between syncs to disk.",
        "required,minDuration=1ms,maxDuration=30s",
    ),
    SettingDef(
        _SYNC + "countTrigger",
        "int",
        10_000,
        "Written records count to trigger sync.",
        "required,min=1,max=1000000",
    ),
    SettingDef(
        _SYNC + "uncompressedBytesTrigger",
        "size",
        1 * MB,
        "Size of buffered uncompressed data to trigger sync.",
        "required,minBytes=100B,maxBytes=500MB",
    ),
    SettingDef(
        _SYNC + "compressedBytesTrigger",
        "size",
        256 * KB,
        "Size of buffered compressed data to trigger sync.",
        "required,minBytes=100B,maxBytes=100MB",
        effective=False,
    ),
    SettingDef(
        _SYNC + "intervalTrigger",
        "duration",
        50 * MS,
        "Interval from the last sync to trigger sync.",
        "required,minDuration=10ms,maxDuration=30s",
    ),
    SettingDef(
        _UPLOAD + "count",
        "int",
        10_000,
        "Records count to trigger slice upload.",
        "required,min=1,max=10000000",
        protected=False,
    ),
    SettingDef(
        _UPLOAD + "size",
        "size",
        5 * MB,
        "Records size to trigger slice upload.",
        "required,minBytes=100B,maxBytes=50MB",
        protected=False,
    ),
    SettingDef(
        _UPLOAD + "interval",
        "duration",
        30 * SECOND,
        "Duration from the last slice upload to trigger the next upload.",
        "required,minDuration=1s,maxDuration=30m",
        protected=False,
    ),
    SettingDef(
        _IMPORT + "count",
        "int",
        50_000,
        "Records count to trigger file import.",
        "required,min=1,max=10000000",
        protected=False,
    ),
    SettingDef(
        _IMPORT + "size",
        "size",
        50 * MB,
        "Records size to trigger file import.",
        "required,minBytes=100B,maxBytes=500MB",
        protected=False,
    ),
    SettingDef(
        _IMPORT + "interval",
        "duration",
        1 * MINUTE,
        "Duration from the last import to trigger the next import.",
        "required,minDuration=30s,maxDuration=24h",
        protected=False,
    ),
    SettingDef(
        _IMPORT + "slicesCount",
        "int",
        100,
        "Number of slices in the file to trigger file import.",
        "required,min=1,max=200",
        effective=False,
    ),
    SettingDef(
        _IMPORT + "expiration",
        "duration",
        30 * MINUTE,
        "Min remaining expiration to trigger file import.",
        "required,minDuration=5m,maxDuration=45m",
        effective=False,
    ),
)

SETTINGS_BY_KEY: dict[str, SettingDef] = {d.key: d for d in SETTINGS}
#: The position of each key in :data:`SETTINGS` (the order errors are listed in).
SETTINGS_ORDER: dict[str, int] = {d.key: index for index, d in enumerate(SETTINGS)}


def get_setting(key: str) -> SettingDef:
    """The definition of a key; raises :class:`SettingValueError` for an unknown key."""
    try:
        return SETTINGS_BY_KEY[key]
    except KeyError:
        raise SettingValueError(f'unknown key "{key}"') from None


def parse_operator_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validates the operator's overrides (protected keys allowed; strings accepted
    for every type) and returns them in API form. Raises :class:`SettingValueError`."""
    result: dict[str, Any] = {}
    for key, value in values.items():
        definition = get_setting(key)
        result[key] = definition.to_api(definition.parse(value, lenient=True))
    return result


def resolve(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merges layers of overrides in API form (later layers win) over the defaults
    and returns every key in **typed form** (durations in seconds, sizes in bytes)."""
    result: dict[str, Any] = {}
    for definition in SETTINGS:
        internal = definition.default
        for layer in layers:
            if layer and definition.key in layer:
                internal = definition.parse(layer[definition.key], lenient=True)
        result[definition.key] = definition.to_typed(internal)
    return result


def describe(inherited: Iterable[Mapping[str, Any] | None], own: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``settings`` list of ``GET .../settings``: every key with its value,
    the value it would have without this entity's own override (``defaultValue``),
    and whether this entity overrides it (``overwritten``)."""
    layers = list(inherited)
    result: list[dict[str, Any]] = []
    for definition in sorted(SETTINGS, key=lambda d: d.key):
        internal = definition.default
        for layer in layers:
            if layer and definition.key in layer:
                internal = definition.parse(layer[definition.key], lenient=True)
        default_value = definition.to_api(internal)
        overwritten = definition.key in own
        item: dict[str, Any] = {
            "key": definition.key,
            "type": definition.api_type,
            "description": definition.description,
            "value": own[definition.key] if overwritten else default_value,
            "defaultValue": default_value,
            "overwritten": overwritten,
            "protected": definition.protected,
        }
        if definition.validation is not None:
            item["validation"] = definition.validation
        result.append(item)
    return result
