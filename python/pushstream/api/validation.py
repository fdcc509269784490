"""Validation of request payloads, path and query parameters.

Errors are :class:`~pushstream.errors.BadRequestError` named by kind, with the
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
from dataclasses import dataclass
from typing import Any

import orjson

from pushstream import _core
from pushstream._core import Mapping
from pushstream.errors import BadRequestError, ConfigError, ForbiddenError, ResourceLimitError
from pushstream.store.settings import SETTINGS_BY_KEY, SETTINGS_ORDER, SettingValueError

MAX_ID_LENGTH = 48
MAX_NAME_LENGTH = 40
MAX_DESCRIPTION_LENGTH = 4096
MAX_COLUMN_NAME_LENGTH = 64
MAX_TEMPLATE_LENGTH = 4096
MAX_COLUMNS = 100
MAX_LIMIT = 100
MISSING_FIELD = "stream.api.missingField"
COLUMN_TYPES = ("uuid", "id", "datetime", "ip", "body", "headers", "path", "template")
SIGNALS = ("logs", "metrics", "traces")
SOURCE_TYPES = ("http", "otlp")
# Keboola's table id: stage, bucket (with the "c-" prefix) and table name; always matched in full.
TABLE_ID = re.compile(r"(in|out)\.c-[0-9A-Za-z_-]{1,96}\.[0-9A-Za-z_-]{1,96}")
BRANCH_PATTERN = re.compile(r"default|[0-9]{1,18}")
# Control characters (C0, DEL, C1) cannot be part of a column name: targets refuse them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The last path segment of these lists; an entity with such an id could not be addressed.
RESERVED_IDS = ("deleted",)
# Go's strconv.ParseInt of a 64-bit integer.
_INT64 = re.compile(r"[+-]?[0-9]{1,19}")
_INT64_MAX = 2**63 - 1


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


def invalid_length(field: str, value: str, limit: int, *, minimum: bool) -> BadRequestError:
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


def get_bool(body: dict[str, Any], key: str, where: str) -> bool | None:
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, bool):
        raise invalid_field_type(f"{where}.{key}", value, "boolean")
    return value


def get_enum(
    body: dict[str, Any], key: str, where: str, choices: tuple[str, ...], *, required: bool = False
) -> str | None:
    value = get_str(body, key, where, required=required)
    if value is not None and value not in choices:
        raise invalid_enum(f"{where}.{key}", value, choices)
    return value


def normalize_id(text: str) -> str:
    """An id from a name or a requested id: accents stripped, every run of other
    characters than ASCII letters and digits turned into one ``-``, lower case,
    trimmed to 48 characters (``"Můj Zdroj #1"`` → ``"muj-zdroj-1"``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    kebab = re.sub(r"[^A-Za-z0-9]+", "-", ascii_only).strip("-").lower()
    return kebab[:MAX_ID_LENGTH].strip("-")


def entity_id(body: dict[str, Any], id_key: str, name: str, label: str) -> str:
    """The id of a new source or sink: ``body[id_key]`` if given, else from ``name``, normalised."""
    requested = get_str(body, id_key, "body", min_len=1, max_len=MAX_ID_LENGTH)
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
    if len(value) > MAX_ID_LENGTH:
        raise invalid_length(label, value, MAX_ID_LENGTH, minimum=False)
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
        return MAX_LIMIT
    return parse_integer("limit", value, minimum=1, maximum=MAX_LIMIT)


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


@dataclass(frozen=True)
class SourceFields:
    """Validated fields of a source create/update payload (``None`` = not given)."""

    name: str | None
    description: str | None
    type: str | None


def _check_required(body: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key not in body:
            raise missing(f"body.{key}")


def source_fields(body: dict[str, Any], *, create: bool) -> SourceFields:
    """The fields of a source payload, checked in the order of Keboola's validators:
    required fields, then ``sourceId``, ``type``, ``name``, ``description``."""
    if create:
        _check_required(body, "type", "name")
        get_str(body, "sourceId", "body", min_len=1, max_len=MAX_ID_LENGTH)
    source_type = get_enum(body, "type", "body", SOURCE_TYPES)
    name = get_str(body, "name", "body", min_len=1, max_len=MAX_NAME_LENGTH)
    description = get_str(body, "description", "body", max_len=MAX_DESCRIPTION_LENGTH)
    if source_type == "otlp":
        raise invalid('Sources of type "otlp" are not supported by pushstream; use "http".')
    return SourceFields(name, description, source_type)


@dataclass(frozen=True)
class SinkFields:
    """Validated fields of a sink create/update payload (``None`` = not given)."""

    name: str | None
    description: str | None
    type: str | None
    table: dict[str, Any] | None
    allowed_signals: tuple[str, ...] | None


def sink_fields(body: dict[str, Any], *, create: bool) -> SinkFields:
    """The fields of a sink payload, checked in the order of Keboola's validators:
    required fields, then ``sinkId``, ``type``, ``name``, ``description``, the rest."""
    if create:
        _check_required(body, "type", "name")
        get_str(body, "sinkId", "body", min_len=1, max_len=MAX_ID_LENGTH)
    sink_type = get_enum(body, "type", "body", ("table",))
    name = get_str(body, "name", "body", min_len=1, max_len=MAX_NAME_LENGTH)
    description = get_str(body, "description", "body", max_len=MAX_DESCRIPTION_LENGTH)
    signals: tuple[str, ...] | None = None
    if "allowedSignals" in body:
        raw = body["allowedSignals"]
        if not isinstance(raw, list):
            raise invalid_field_type("body.allowedSignals", raw, "array")
        for index, item in enumerate(raw):
            if item not in SIGNALS:
                raise invalid_enum(f"body.allowedSignals[{index}]", item, SIGNALS)
        signals = tuple(dict.fromkeys(raw))
    table: dict[str, Any] | None = None
    if "table" in body:
        table = table_fields(body["table"], create=create)
    elif create:
        raise missing("body.table")
    return SinkFields(name, description, sink_type, table, signals)


def table_fields(raw: Any, *, create: bool) -> dict[str, Any]:
    """The ``table`` object of a sink; on update every field is optional (merged later)."""
    if not isinstance(raw, dict):
        raise invalid_field_type("body.table", raw, "object")
    result: dict[str, Any] = {}
    table_type = get_enum(raw, "type", "body.table", ("keboola",), required=create)
    if table_type is not None:
        result["type"] = table_type
    table_id = get_str(raw, "tableId", "body.table", required=create)
    if table_id is not None:
        if not TABLE_ID.fullmatch(table_id):
            raise invalid(
                f'"body.table.tableId" must look like "in.c-bucket.table" (stage "in" or "out", bucket with the "c-" '
                f'prefix, letters, digits, "_" and "-"), found "{table_id}".'
            )
        result["tableId"] = table_id
    if "mapping" in raw:
        mapping = raw["mapping"]
        if not isinstance(mapping, dict):
            raise invalid_field_type("body.table.mapping", mapping, "object")
        if "columns" not in mapping:
            raise missing("body.table.mapping.columns")
        result["mapping"] = {"columns": columns(mapping["columns"])}
    elif create:
        raise missing("body.table.mapping")
    return result


def columns(raw: Any) -> list[dict[str, Any]]:
    """Validates ``table.mapping.columns`` and returns them in canonical form
    (known fields only, in a fixed order). The column definitions are compiled
    with the Rust core (:class:`pushstream.Mapping`), which checks paths and templates."""
    where = "body.table.mapping.columns"
    if not isinstance(raw, list):
        raise invalid_field_type(where, raw, "array")
    if not raw:
        raise invalid(f'"{where}" must contain at least one column.')
    if len(raw) > MAX_COLUMNS:
        raise ResourceLimitError(f"Maximum number of columns per sink is {MAX_COLUMNS}, found {len(raw)}.")
    result = []
    for index, column in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(column, dict):
            raise invalid_field_type(at, column, "object")
        column_type = get_enum(column, "type", at, COLUMN_TYPES, required=True)
        name = get_str(column, "name", at, required=True, min_len=1, max_len=MAX_COLUMN_NAME_LENGTH)
        assert name is not None
        if _CONTROL.search(name):
            raise invalid(f"Column name {_quoted(name)} contains a control character.")
        canonical: dict[str, Any] = {"type": column_type, "name": name}
        primary_key = get_bool(column, "primaryKey", at)
        if primary_key is not None:
            canonical["primaryKey"] = primary_key
        path = get_str(column, "path", at, min_len=1)
        if path is not None:
            canonical["path"] = path
        default_value = get_str(column, "defaultValue", at)
        if default_value is not None:
            canonical["defaultValue"] = default_value
        raw_string = get_bool(column, "rawString", at)
        if raw_string is not None:
            canonical["rawString"] = raw_string
        if "template" in column:
            template = column["template"]
            if not isinstance(template, dict):
                raise invalid_field_type(f"{at}.template", template, "object")
            language = get_enum(template, "language", f"{at}.template", ("jsonnet",), required=True)
            content = get_str(
                template, "content", f"{at}.template", required=True, min_len=1, max_len=MAX_TEMPLATE_LENGTH
            )
            canonical["template"] = {"language": language, "content": content}
            problem = _validate_template(content or "")
            if problem:
                raise invalid(f'Column "{name}" template is invalid: {problem}.')
        result.append(canonical)
    _check_names_differ_in_more_than_case(result)
    try:
        Mapping(result)
    except ConfigError as exc:
        prefix = f'Invalid column "{exc.column}": ' if exc.column else "Invalid columns: "
        raise invalid(prefix + exc.message + ".") from None
    return result


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
    change_description = get_str(body, "changeDescription", "body")
    raw = body.get("settings", [])
    if not isinstance(raw, list):
        raise invalid_field_type("body.settings", raw, "array")
    parsed: list[tuple[str, Any]] = []
    for index, item in enumerate(raw):
        at = f"body.settings[{index}]"
        if not isinstance(item, dict):
            raise invalid_field_type(at, item, "object")
        key = get_str(item, "key", at, required=True, min_len=1)
        assert key is not None
        parsed.append((key, item.get("value")))
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
