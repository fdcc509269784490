"""The settings of sources and sinks: keys, types, defaults, bounds and the
inheritance ``defaults < operator config < source overrides < sink overrides``.

Three representations of a value are used:

* **API form** (what ``GET .../settings`` shows and ``PATCH`` accepts, and what the
  store keeps in a source's or sink's state): ``bool``, ``int``, or a string —
  durations as Go duration strings (``"30s"``, ``"1m0s"``), sizes as ``"5MB"``.
* **internal form**: ``bool``, ``int``, ``str``; durations as integer nanoseconds,
  sizes as integer bytes.
* **typed form** (what :func:`resolve` returns for the data plane): ``bool``,
  ``int``, ``str``; durations as ``float`` **seconds**, sizes as ``int`` **bytes**.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

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

Kind = Literal["bool", "int", "duration", "size", "enum"]


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


@dataclass(frozen=True)
class SettingDef:
    """One settings key: its type, default, bounds and whether only the operator may change it."""

    key: str
    kind: Kind
    default: Any
    description: str
    protected: bool = False
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()

    @property
    def api_type(self) -> str:
        """The ``type`` of the key in the API (``bool``, ``int`` or ``string``)."""
        return {"bool": "bool", "int": "int"}.get(self.kind, "string")

    @property
    def validation(self) -> str | None:
        """The bounds as a rule string (``min=1,max=100``, ``minDuration=1s,maxDuration=30m0s``, ...)."""
        if self.kind == "int":
            return f"min={self.minimum},max={self.maximum}"
        if self.kind == "duration":
            return f"minDuration={format_duration(self.minimum or 0)},maxDuration={format_duration(self.maximum or 0)}"
        if self.kind == "size":
            return f"minBytes={format_size(self.minimum or 0)},maxBytes={format_size(self.maximum or 0)}"
        if self.kind == "enum":
            return "oneof=" + " ".join(self.choices)
        return None

    def parse(self, value: Any, *, lenient: bool = False) -> Any:
        """Validates a value in API form and returns its internal form.

        ``lenient`` also accepts strings for ``bool``/``int`` keys (operator
        configuration from the command line); the API is strict.
        Raises :class:`SettingValueError`.
        """
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if lenient and isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            raise SettingValueError(f'"{self.key}" expects a boolean, found {_describe(value)}')
        if self.kind == "int":
            number: int
            if isinstance(value, int) and not isinstance(value, bool):
                number = value
            elif (isinstance(value, float) and value.is_integer()) or (
                lenient and isinstance(value, str) and re.fullmatch(r"\s*[+-]?[0-9]+\s*", value)
            ):
                number = int(value)
            else:
                raise SettingValueError(f'"{self.key}" expects an integer, found {_describe(value)}')
            self._check_bounds(number, str(number), str)
            return number
        if not isinstance(value, str):
            raise SettingValueError(f'"{self.key}" expects a string, found {_describe(value)}')
        if self.kind == "enum":
            if value not in self.choices:
                raise SettingValueError(f'"{self.key}" must be one of {", ".join(self.choices)}, found "{value}"')
            return value
        try:
            parsed = parse_duration(value) if self.kind == "duration" else parse_size(value)
        except SettingValueError as exc:
            raise SettingValueError(f'"{self.key}": {exc}') from None
        self._check_bounds(parsed, value, format_duration if self.kind == "duration" else format_size)
        return parsed

    def _check_bounds(self, number: int, shown: str, fmt: Any) -> None:
        if self.minimum is not None and number < self.minimum:
            raise SettingValueError(f'"{self.key}" must be at least {fmt(self.minimum)}, found {shown}')
        if self.maximum is not None and number > self.maximum:
            raise SettingValueError(f'"{self.key}" must be at most {fmt(self.maximum)}, found {shown}')

    def to_api(self, internal: Any) -> Any:
        """Internal form → API form."""
        if self.kind == "duration":
            return format_duration(internal)
        if self.kind == "size":
            return format_size(internal)
        return internal

    def to_typed(self, internal: Any) -> Any:
        """Internal form → typed form (durations in seconds)."""
        if self.kind == "duration":
            return internal / SECOND
        return internal


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


SETTINGS: tuple[SettingDef, ...] = (
    SettingDef(
        "storage.level.local.encoding.sync.wait",
        "bool",
        True,
        "Answer an import request only once its rows are synced to local disk (200); "
        "when false the receiver answers 202 as soon as the rows are accepted.",
    ),
    SettingDef(
        "storage.level.staging.upload.trigger.count",
        "int",
        10_000,
        "Move the local slice to the staging level when it holds this many records.",
        minimum=1,
        maximum=10_000_000,
    ),
    SettingDef(
        "storage.level.staging.upload.trigger.size",
        "size",
        5 * MB,
        "Move the local slice to the staging level when its uncompressed size reaches this size.",
        minimum=100,
        maximum=50 * MB,
    ),
    SettingDef(
        "storage.level.staging.upload.trigger.interval",
        "duration",
        30 * SECOND,
        "Move the local slice to the staging level when it has been open this long.",
        minimum=1 * SECOND,
        maximum=30 * MINUTE,
    ),
    SettingDef(
        "storage.level.target.import.trigger.count",
        "int",
        50_000,
        "Import the staged files into the table when they hold this many records.",
        minimum=1,
        maximum=10_000_000,
    ),
    SettingDef(
        "storage.level.target.import.trigger.size",
        "size",
        50 * MB,
        "Import the staged files into the table when their uncompressed size reaches this size.",
        minimum=100,
        maximum=500 * MB,
    ),
    SettingDef(
        "storage.level.target.import.trigger.interval",
        "duration",
        1 * MINUTE,
        "Import the staged files into the table when the oldest of them has waited this long.",
        minimum=30 * SECOND,
        maximum=24 * HOUR,
    ),
    SettingDef(
        "storage.level.local.encoding.sync.mode",
        "enum",
        "disk",
        'How local slices are synced: "disk" flushes rows to the disk (fdatasync), '
        '"cache" only hands them to the operating system cache.',
        protected=True,
        choices=("disk", "cache"),
    ),
    SettingDef(
        "storage.level.local.encoding.sync.checkInterval",
        "duration",
        5 * MS,
        "How often the sync triggers of rows that nobody waits for are checked.",
        protected=True,
        minimum=1 * MS,
        maximum=30 * SECOND,
    ),
    SettingDef(
        "storage.level.local.encoding.sync.countTrigger",
        "int",
        10_000,
        "Sync the local slice at the latest when this many records wait for it.",
        protected=True,
        minimum=1,
        maximum=1_000_000,
    ),
    SettingDef(
        "storage.level.local.encoding.sync.uncompressedBytesTrigger",
        "size",
        1 * MB,
        "Sync the local slice at the latest when this much data waits for it.",
        protected=True,
        minimum=100,
        maximum=500 * MB,
    ),
    SettingDef(
        "storage.level.local.encoding.sync.intervalTrigger",
        "duration",
        50 * MS,
        "Sync the local slice at the latest this long after the first row that waits for it.",
        protected=True,
        minimum=10 * MS,
        maximum=30 * SECOND,
    ),
)

SETTINGS_BY_KEY: dict[str, SettingDef] = {d.key: d for d in SETTINGS}


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
    for definition in SETTINGS:
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
