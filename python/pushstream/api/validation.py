"""Validation of request payloads, path and query parameters.

Request bodies are checked against their declarations in :mod:`pushstream.wire`
(:func:`check_body`: types, lengths, enums, patterns and required fields are read
from the structures); the rules beyond them (a column name without control
characters, templates, the mapping as the core compiles it, the mapping's options:
an event-time column of dataType timestamp, a merge strategy that fits the primary
key, the names the system columns reserve; settings values) and
the wording of every error live here. Errors are :class:`~pushstream.errors.BadRequestError` named by kind, with the
messages of Keboola's API (which come from its goa validators), naming the field
(``body.name``, ``versionNumber``, ...):

* ``stream.api.missingField`` — ``"name" is missing from body.``
* ``stream.api.invalidLength`` — ``Length of body.name must be greater or equal than 1 but got value "" (len=0)``
* ``stream.api.invalidEnumValue`` — ``Value of body.type must be one of "table" but got value "foo".``
* ``stream.api.invalidFieldType`` — ``Invalid value "x" for "versionNumber", must be a integer``
* ``stream.api.invalidRange`` — ``Limit must be lesser or equal than 100 but got value 101.``
* ``stream.api.badRequest`` — everything else (table ids, columns, templates, settings values).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi
import orjson

from pushstream import _core, wire
from pushstream._core import Mapping
from pushstream.catalog.settings import SETTINGS_BY_KEY, SETTINGS_ORDER, SettingValueError
from pushstream.errors import BadRequestError, ConfigError, ForbiddenError, PushstreamError, ResourceLimitError

MISSING_FIELD = "stream.api.missingField"
BRANCH_PATTERN = re.compile(r"default|[0-9]{1,18}")
# Control characters (C0, DEL, C1) cannot be part of a column name: targets refuse them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The last path segment of these lists; an entity with such an id could not be addressed.
RESERVED_IDS = ("deleted",)
# Go's strconv.ParseInt of a 64-bit integer.
_INT64 = re.compile(r"[+-]?[0-9]{1,19}")
_INT64_MAX = 2**63 - 1
_ListError = Callable[[str, list[Any], int], PushstreamError]


def _sentence(message: str) -> str:
    """Keboola's form of a validator message: capitalised, ending with a period
    (unless it ends with a parenthesis, as the length messages do)."""
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", ")")) else message + "."


def _quoted(value: Any) -> str:
    """A value as Go's ``%#v`` shows it in goa's messages (strings quoted)."""
    if isinstance(value, str | dict | list):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    return str(value)


def missing(field: str) -> BadRequestError:
    """``field`` is the dotted path of the missing field (``body.name``, ``header.X-StorageApi-Token``)."""
    where, _, name = field.rpartition(".")
    return BadRequestError(f'"{name}" is missing from {where}.', error=MISSING_FIELD)


def invalid(message: str) -> BadRequestError:
    return BadRequestError(message)


def invalid_length(field: str, value: str | list[Any], limit: int, *, minimum: bool) -> BadRequestError:
    relation = "greater" if minimum else "lesser"
    return BadRequestError(
        f"Length of {field} must be {relation} or equal than {limit} but got value {_quoted(value)} (len={len(value)})",
        error="stream.api.invalidLength",
    )


def invalid_enum(field: str, value: Any, choices: tuple[str, ...]) -> BadRequestError:
    allowed = ", ".join(f'"{choice}"' for choice in choices)
    return BadRequestError(
        f"Value of {field} must be one of {allowed} but got value {_quoted(value)}.",
        error="stream.api.invalidEnumValue",
    )


def _field_type_message(field: str, value: Any, expected: str) -> str:
    return f'invalid value {_quoted(value)} for "{field}", must be a {expected}'


def invalid_field_type(field: str, value: Any, expected: str) -> BadRequestError:
    """A value of the wrong JSON type (``expected`` is ``string``, ``boolean``, ``array``, ``object``)."""
    return BadRequestError(_sentence(_field_type_message(field, value, expected)), error="stream.api.invalidFieldType")


def _range_message(field: str, value: int, limit: int, *, minimum: bool) -> str:
    relation = "greater" if minimum else "lesser"
    return f"{field} must be {relation} or equal than {limit} but got value {value}"


def parse_integer(field: str, raw: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer path or query parameter, as goa reads it: a value that is not a
    64-bit integer is an ``invalidFieldType`` and counts as 0 for the range checks
    that follow (their messages are joined with ``; ``); out of range alone is an
    ``invalidRange``."""
    problems: list[str] = []
    name = ""
    value = 0
    if _INT64.fullmatch(raw) and abs(int(raw)) <= _INT64_MAX:
        value = int(raw)
    else:
        problems.append(_field_type_message(field, raw, "integer"))
        name = "stream.api.invalidFieldType"
    if minimum is not None and value < minimum:
        problems.append(_range_message(field, value, minimum, minimum=True))
    if maximum is not None and value > maximum:
        problems.append(_range_message(field, value, maximum, minimum=False))
    if problems:
        raise BadRequestError(_sentence("; ".join(problems)), error=name or "stream.api.invalidRange")
    return value


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body (an empty body is ``{}``)."""
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"The request body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    return body


def get_str(
    body: dict[str, Any], key: str, where: str, *, required: bool = False, min_len: int = 0, max_len: int | None = None
) -> str | None:
    """A string field; ``None`` when absent and not required."""
    if key not in body:
        if required:
            raise missing(f"{where}.{key}")
        return None
    value = body[key]
    field = f"{where}.{key}"
    if not isinstance(value, str):
        raise invalid_field_type(field, value, "string")
    if len(value) < min_len:
        raise invalid_length(field, value, min_len, minimum=True)
    if max_len is not None and len(value) > max_len:
        raise invalid_length(field, value, max_len, minimum=False)
    return value


def normalize_id(text: str) -> str:
    """An id from a name or a requested id: accents stripped, every run of other
    characters than ASCII letters and digits turned into one ``-``, lower case,
    trimmed to 48 characters (``"Můj Zdroj #1"`` → ``"muj-zdroj-1"``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    kebab = re.sub(r"[^A-Za-z0-9]+", "-", ascii_only).strip("-").lower()
    return kebab[: wire.MAX_ID_LENGTH].strip("-")


def entity_id(body: dict[str, Any], id_key: str, name: str, label: str) -> str:
    """The id of a new source or sink: ``body[id_key]`` if given, else from ``name``, normalised."""
    requested = get_str(body, id_key, "body", min_len=1, max_len=wire.MAX_ID_LENGTH)
    base = requested if requested else name
    result = normalize_id(base)
    if not result:
        field = f"body.{id_key}" if requested else "body.name"
        raise invalid(f'Cannot derive a {label} id from "{field}": it must contain at least one letter or digit.')
    if result in RESERVED_IDS:
        raise invalid(f'"{result}" is reserved and cannot be used as a {label} id.')
    return result


def check_path_id(value: str, label: str) -> str:
    """A ``sourceId``/``sinkId`` path parameter: 1–48 characters."""
    if len(value) < 1:
        raise invalid_length(label, value, 1, minimum=True)
    if len(value) > wire.MAX_ID_LENGTH:
        raise invalid_length(label, value, wire.MAX_ID_LENGTH, minimum=False)
    return value


def parse_branch(value: str) -> str | int:
    """``"default"`` or a numeric branch id."""
    if not BRANCH_PATTERN.fullmatch(value):
        raise invalid(f'"branchId" must be "default" or a numeric branch id, found "{value}".')
    return "default" if value == "default" else int(value)


def parse_version_number(value: str) -> int:
    """The ``versionNumber`` path parameter: an integer from 1."""
    return parse_integer("versionNumber", value, minimum=1)


def parse_limit(value: str | None) -> int:
    """The ``limit`` query parameter: 1–100, default 100 (also when empty)."""
    if value is None or value == "":
        return wire.MAX_PAGE_LIMIT
    return parse_integer("limit", value, minimum=1, maximum=wire.MAX_PAGE_LIMIT)


def parse_flush_wait(value: str | None, maximum: float) -> float:
    """The ``wait`` query parameter of a flush: seconds to wait for the imports, 0–``maximum``, default 0."""
    if value is None or value == "":
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        raise invalid(f'"query.wait" must be a number of seconds, found "{value}".') from None
    if not 0 <= seconds <= maximum:
        raise invalid(f'"query.wait" must be between 0 and {maximum:g} seconds, found {value}.')
    return seconds


def parse_query_bool(value: str | None, name: str) -> bool:
    """A boolean query parameter as Go's ``strconv.ParseBool`` reads it; empty is false."""
    if value is None or value == "":
        return False
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise invalid(f'"query.{name}" must be a boolean, found "{value}".')


# Checking a body against its declaration in pushstream.wire.

# Keboola's words for values that do not match a pattern, by pattern (goa's own message otherwise).
_PATTERN_MESSAGES = {
    wire.TABLE_ID_PATTERN: '"{field}" must look like "in.c-bucket.table" (stage "in" or "out", bucket with the "c-" '
    'prefix, letters, digits, "_" and "-"), found "{value}".',
}


def _too_few_columns(field: str, value: list[Any], limit: int) -> PushstreamError:
    return invalid(f'"{field}" must contain at least one column.')


def _too_many_columns(field: str, value: list[Any], limit: int) -> PushstreamError:
    return ResourceLimitError(f"Maximum number of columns per sink is {limit}, found {len(value)}.")


# Keboola's errors for lists out of their bounds, by (struct, field): (too few, too many).
_LIST_LIMIT_ERRORS: dict[tuple[type[Any], str], tuple[_ListError, _ListError]] = {
    (wire.TableMapping, "columns"): (_too_few_columns, _too_many_columns),
}


@dataclass(frozen=True)
class _Field:
    name: str
    key: str
    info: mi.Type
    required: bool

    @property
    def is_object(self) -> bool:
        info = self.info.type if isinstance(self.info, mi.Metadata) else self.info
        return isinstance(info, mi.StructType)


@cache
def _fields(struct: type[msgspec.Struct]) -> tuple[_Field, ...]:
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    return tuple(_Field(f.name, f.encode_name, f.type, f.required) for f in info.fields)


def check_body(struct: type[msgspec.Struct], body: dict[str, Any]) -> dict[str, Any]:
    """``body`` checked against ``struct`` (a request body of :mod:`pushstream.wire`): the
    required values first, as Keboola's validators do (a missing object is reported in its
    turn), then each field in declared order. Returns the known fields that were given, in
    declared order (the canonical form)."""
    for field in _fields(struct):
        if field.required and not field.is_object and field.key not in body:
            raise missing(f"body.{field.key}")
    return _check_struct(struct, body, "body")


def _check_struct(struct: type[msgspec.Struct], raw: dict[str, Any], where: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for field in _fields(struct):
        if field.key not in raw:
            if field.required:
                raise missing(f"{where}.{field.key}")
            continue
        at = f"{where}.{field.key}"
        value = _check_value(field.info, raw[field.key], at, (struct, field.name))
        field_rule = _FIELD_RULES.get((struct, field.name))
        if field_rule is not None:
            field_rule(value)
        result[field.key] = value
    struct_rule = _STRUCT_RULES.get(struct)
    if struct_rule is not None:
        struct_rule(result, where)
    return result


def _check_value(info: mi.Type, value: Any, field: str, owner: tuple[type[Any], str], *, item: bool = False) -> Any:
    if isinstance(info, mi.Metadata):
        return _check_value(info.type, value, field, owner, item=item)
    if isinstance(info, mi.StructType):
        if not isinstance(value, dict):
            raise invalid_field_type(field, value, "object")
        return _check_struct(info.cls, value, field)
    if isinstance(info, mi.LiteralType):
        choices = wire.enum_values(info.values)
        # Items of a list are only compared with the choices (goa checks their type with the list's).
        if not item and not isinstance(value, str):
            raise invalid_field_type(field, value, "string")
        if value not in choices:
            raise invalid_enum(field, value, choices)
        return value
    if isinstance(info, mi.StrType):
        if not isinstance(value, str):
            raise invalid_field_type(field, value, "string")
        if info.min_length is not None and len(value) < info.min_length:
            raise invalid_length(field, value, info.min_length, minimum=True)
        if info.max_length is not None and len(value) > info.max_length:
            raise invalid_length(field, value, info.max_length, minimum=False)
        if info.pattern is not None and not _pattern(info.pattern).fullmatch(value):
            message = _PATTERN_MESSAGES.get(
                info.pattern, "{field} must match the regexp {pattern} but got value {quoted}"
            )
            raise invalid(
                message.format(field=field, value=value, pattern=_quoted(info.pattern), quoted=_quoted(value))
            )
        return value
    if isinstance(info, mi.BoolType):
        if not isinstance(value, bool):
            raise invalid_field_type(field, value, "boolean")
        return value
    if isinstance(info, mi.ListType | mi.VarTupleType):
        if not isinstance(value, list):
            raise invalid_field_type(field, value, "array")
        too_few, too_many = _LIST_LIMIT_ERRORS.get(owner, (_list_too_short, _list_too_long))
        if info.min_length is not None and len(value) < info.min_length:
            raise too_few(field, value, info.min_length)
        if info.max_length is not None and len(value) > info.max_length:
            raise too_many(field, value, info.max_length)
        return [_check_value(info.item_type, x, f"{field}[{i}]", owner, item=True) for i, x in enumerate(value)]
    if isinstance(info, mi.AnyType):
        return value
    raise TypeError(f"cannot check {info!r}")


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _list_too_short(field: str, value: list[Any], limit: int) -> PushstreamError:
    return invalid_length(field, value, limit, minimum=True)


def _list_too_long(field: str, value: list[Any], limit: int) -> PushstreamError:
    return invalid_length(field, value, limit, minimum=False)


# Rules beyond the declarations: on one field once it is checked, and on a struct once its fields are.


def _check_column_name(name: str) -> None:
    if _CONTROL.search(name):
        raise invalid(f"Column name {_quoted(name)} contains a control character.")


def _check_column(column: dict[str, Any], where: str) -> None:
    template = column.get("template")
    if template is not None:
        problem = _validate_template(template["content"])
        if problem:
            raise invalid(f'Column "{column["name"]}" template is invalid: {problem}.')


def _check_mapping(mapping: dict[str, Any], where: str) -> None:
    columns = mapping["columns"]
    _check_names_differ_in_more_than_case(columns)
    try:
        Mapping(columns)
    except ConfigError as exc:
        prefix = f'Invalid column "{exc.column}": ' if exc.column else "Invalid columns: "
        raise invalid(prefix + exc.message + ".") from None
    _check_event_time_column(mapping, where)
    _check_merge_strategy(mapping, where)
    _check_system_columns(mapping, where)


def _check_event_time_column(mapping: dict[str, Any], where: str) -> None:
    name = mapping.get("eventTimeColumn")
    if name is None:
        return
    column = next((c for c in mapping["columns"] if c["name"] == name), None)
    problem = "(no such column)" if column is None else f"of dataType {column.get('dataType', 'string')}"
    if column is None or column.get("dataType") != "timestamp":
        raise invalid(
            f'"{where}.eventTimeColumn" must name a column of dataType timestamp, found {_quoted(name)} {problem}.'
        )


def _check_merge_strategy(mapping: dict[str, Any], where: str) -> None:
    strategy = mapping.get("mergeStrategy")
    if strategy is None:
        return
    keys = [c["name"] for c in mapping["columns"] if c.get("primaryKey")]
    if strategy == "append" and keys:
        names = ", ".join(_quoted(k) for k in keys)
        raise invalid(
            f'"{where}.mergeStrategy": mergeStrategy append takes no primary key, found primaryKey on '
            f"{'column' if len(keys) == 1 else 'columns'} {names}."
        )
    if strategy in ("upsert", "ledger") and not keys:
        raise invalid(
            f'"{where}.mergeStrategy": mergeStrategy {strategy} needs a primary key: set primaryKey on a column.'
        )


def _check_system_columns(mapping: dict[str, Any], where: str) -> None:
    if not mapping.get("systemColumns"):
        return
    reserved = {name.casefold(): name for name in wire.SYSTEM_COLUMNS}
    for column in mapping["columns"]:
        system = reserved.get(column["name"].casefold())
        if system is not None:
            raise invalid(
                f"Column name {_quoted(column['name'])} is reserved for the system column {_quoted(system)} "
                f'("{where}.systemColumns" is true).'
            )


_FIELD_RULES: dict[tuple[type[Any], str], Callable[[Any], None]] = {
    (wire.TableColumn, "name"): _check_column_name,
}
_STRUCT_RULES: dict[type[Any], Callable[[dict[str, Any], str], None]] = {
    wire.TableColumn: _check_column,
    wire.TableMapping: _check_mapping,
}


# The bodies of the operations.


@dataclass(frozen=True)
class SourceFields:
    """Validated fields of a source create/update payload (``None`` = not given)."""

    name: str | None
    description: str | None
    type: str | None
    change_description: str | None = None


def source_fields(body: dict[str, Any], *, create: bool) -> SourceFields:
    """The fields of a source payload (:class:`~pushstream.wire.CreateSourceRequestBody` or
    :class:`~pushstream.wire.UpdateSourceRequestBody`)."""
    fields = check_body(wire.CreateSourceRequestBody if create else wire.UpdateSourceRequestBody, body)
    return SourceFields(
        fields.get("name"), fields.get("description"), fields.get("type"), fields.get("changeDescription")
    )


@dataclass(frozen=True)
class SinkFields:
    """Validated fields of a sink create/update payload (``None`` = not given)."""

    name: str | None
    description: str | None
    type: str | None
    table: dict[str, Any] | None
    allowed_signals: tuple[wire.Signal, ...] | None
    change_description: str | None = None


def sink_fields(body: dict[str, Any], *, create: bool) -> SinkFields:
    """The fields of a sink payload (:class:`~pushstream.wire.CreateSinkRequestBody` or
    :class:`~pushstream.wire.UpdateSinkRequestBody`); ``table`` in canonical form."""
    fields = check_body(wire.CreateSinkRequestBody if create else wire.UpdateSinkRequestBody, body)
    signals = fields.get("allowedSignals")
    return SinkFields(
        fields.get("name"),
        fields.get("description"),
        fields.get("type"),
        fields.get("table"),
        None if signals is None else tuple(dict.fromkeys(signals)),
        fields.get("changeDescription"),
    )


def _check_names_differ_in_more_than_case(columns: list[dict[str, Any]]) -> None:
    """Table column names are case-insensitive in the targets (SQLite, PostgreSQL
    quoted or not, Keboola Storage), so ``a`` and ``A`` would be one column."""
    seen: dict[str, str] = {}
    for column in columns:
        name: str = column["name"]
        other = seen.setdefault(name.casefold(), name)
        if other != name:
            raise invalid(f'Columns "{other}" and "{name}" differ only in case; column names are case-insensitive.')


def _validate_template(content: str) -> str | None:
    """The core's message for an invalid Jsonnet template, or None; ``Mapping``
    compiles templates too, this gives the most precise message first."""
    validate = getattr(_core, "validate_template", None)
    if validate is None:
        return None
    problem: str | None = validate(content)
    return problem


@dataclass(frozen=True)
class SettingsPatch:
    """A validated settings patch: new values in API form, ``None`` = reset."""

    values: dict[str, Any]
    change_description: str | None


def settings_patch(body: dict[str, Any]) -> SettingsPatch:
    """Validates ``{"settings": [{"key", "value"}], "changeDescription"}``: unknown keys
    and invalid values → 400, protected keys → 403."""
    fields = check_body(wire.UpdateSettingsRequestBody, body)
    change_description = fields.get("changeDescription")
    parsed = [(item["key"], item.get("value")) for item in fields.get("settings", [])]
    unknown = [key for key, _ in parsed if key not in SETTINGS_BY_KEY]
    if unknown:
        names = ", ".join(f'"{k}"' for k in dict.fromkeys(unknown))
        raise invalid(f"Unknown settings keys: {names}.")
    protected = [key for key, _ in parsed if SETTINGS_BY_KEY[key].protected]
    if protected:
        names = ", ".join(f'"{k}"' for k in dict.fromkeys(protected))
        raise ForbiddenError(f"Cannot modify protected keys: {names}.")
    values: dict[str, Any] = {}
    problems: list[tuple[int, str]] = []
    for key, value in parsed:
        if value is None:
            values[key] = None
            continue
        definition = SETTINGS_BY_KEY[key]
        try:
            values[key] = definition.to_api(definition.parse(value))
        except SettingValueError as exc:
            problems.append((SETTINGS_ORDER[key], str(exc)))
    if problems:
        # Keboola lists every invalid value, in the order of its configuration structure.
        messages = [message for _, message in sorted(problems, key=lambda p: p[0])]
        raise invalid(messages[0] + "." if len(messages) == 1 else "\n".join(f"- {m}." for m in messages))
    return SettingsPatch(values, change_description)
