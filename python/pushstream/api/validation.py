"""Validation of request payloads, path and query parameters.

Errors are :class:`~pushstream.errors.BadRequestError`: ``stream.api.missingField``
for a missing required field or header, ``stream.api.badRequest`` for everything
else, with a message naming the field (``body.name``, ``query.limit``, ...).
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
from pushstream.store.settings import SETTINGS_BY_KEY, SettingValueError

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
# Keboola's table id: stage, bucket (with the "c-" prefix) and table name.
TABLE_ID = re.compile(r"^(in|out)\.c-[0-9A-Za-z_-]{1,96}\.[0-9A-Za-z_-]{1,96}$")
# Ids are kebab-case; any other path id cannot exist.
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
BRANCH_PATTERN = re.compile(r"^(default|[0-9]{1,18})$")
# The last path segment of these lists; an entity with such an id could not be addressed.
RESERVED_IDS = ("deleted",)


def missing(field: str) -> BadRequestError:
    return BadRequestError(f'Missing required field "{field}".', error=MISSING_FIELD)


def invalid(message: str) -> BadRequestError:
    return BadRequestError(message)


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


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def get_str(
    body: dict[str, Any], key: str, where: str, *, required: bool = False, min_len: int = 0, max_len: int | None = None
) -> str | None:
    """A string field; ``None`` when absent and not required."""
    if key not in body:
        if required:
            raise missing(f"{where}.{key}")
        return None
    value = body[key]
    if not isinstance(value, str):
        raise invalid(f'"{where}.{key}" must be a string, found {_type_name(value)}.')
    if len(value) < min_len:
        raise invalid(f'"{where}.{key}" must be at least {min_len} characters long, found {len(value)}.')
    if max_len is not None and len(value) > max_len:
        raise invalid(f'"{where}.{key}" must be at most {max_len} characters long, found {len(value)}.')
    return value


def get_bool(body: dict[str, Any], key: str, where: str) -> bool | None:
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, bool):
        raise invalid(f'"{where}.{key}" must be a boolean, found {_type_name(value)}.')
    return value


def get_enum(
    body: dict[str, Any], key: str, where: str, choices: tuple[str, ...], *, required: bool = False
) -> str | None:
    value = get_str(body, key, where, required=required)
    if value is not None and value not in choices:
        raise invalid(f'"{where}.{key}" must be one of {", ".join(choices)}, found "{value}".')
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
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise invalid(f'"{label}" must be 1 to {MAX_ID_LENGTH} characters long, found {len(value)}.')
    return value


def parse_branch(value: str) -> str | int:
    """``"default"`` or a numeric branch id."""
    if not BRANCH_PATTERN.match(value):
        raise invalid(f'"branchId" must be "default" or a numeric branch id, found "{value}".')
    return "default" if value == "default" else int(value)


def parse_version_number(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,18}", value) or int(value) < 1:
        raise invalid(f'"versionNumber" must be a positive integer, found "{value}".')
    return int(value)


def parse_limit(value: str | None) -> int:
    """The ``limit`` query parameter: 1–100, default 100 (also when empty)."""
    if value is None or value == "":
        return MAX_LIMIT
    if not re.fullmatch(r"[+-]?[0-9]{1,18}", value.strip()):
        raise invalid(f'"query.limit" must be an integer, found "{value}".')
    limit = int(value)
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f'"query.limit" must be between 1 and {MAX_LIMIT}, found {limit}.')
    return limit


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


def source_fields(body: dict[str, Any], *, create: bool) -> SourceFields:
    name = get_str(body, "name", "body", required=create, min_len=1, max_len=MAX_NAME_LENGTH)
    description = get_str(body, "description", "body", max_len=MAX_DESCRIPTION_LENGTH)
    source_type = get_str(body, "type", "body", required=create)
    if source_type is not None and source_type != "http":
        if source_type == "otlp":
            raise invalid('Sources of type "otlp" are not supported by pushstream; use "http".')
        raise invalid(f'"body.type" must be "http", found "{source_type}".')
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
    name = get_str(body, "name", "body", required=create, min_len=1, max_len=MAX_NAME_LENGTH)
    description = get_str(body, "description", "body", max_len=MAX_DESCRIPTION_LENGTH)
    sink_type = get_enum(body, "type", "body", ("table",), required=create)
    signals: tuple[str, ...] | None = None
    if "allowedSignals" in body:
        raw = body["allowedSignals"]
        if not isinstance(raw, list):
            raise invalid(f'"body.allowedSignals" must be an array, found {_type_name(raw)}.')
        for item in raw:
            if item not in SIGNALS:
                raise invalid(f'"body.allowedSignals" items must be one of {", ".join(SIGNALS)}, found {item!r}.')
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
        raise invalid(f'"body.table" must be an object, found {_type_name(raw)}.')
    result: dict[str, Any] = {}
    table_type = get_enum(raw, "type", "body.table", ("keboola",), required=create)
    if table_type is not None:
        result["type"] = table_type
    table_id = get_str(raw, "tableId", "body.table", required=create)
    if table_id is not None:
        if not TABLE_ID.match(table_id):
            raise invalid(
                f'"body.table.tableId" must look like "in.c-bucket.table" (stage "in" or "out", bucket with the "c-" '
                f'prefix, letters, digits, "_" and "-"), found "{table_id}".'
            )
        result["tableId"] = table_id
    if "mapping" in raw:
        mapping = raw["mapping"]
        if not isinstance(mapping, dict):
            raise invalid(f'"body.table.mapping" must be an object, found {_type_name(mapping)}.')
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
        raise invalid(f'"{where}" must be an array, found {_type_name(raw)}.')
    if not raw:
        raise invalid(f'"{where}" must contain at least one column.')
    if len(raw) > MAX_COLUMNS:
        raise ResourceLimitError(f"Maximum number of columns per sink is {MAX_COLUMNS}, found {len(raw)}.")
    result = []
    for index, column in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(column, dict):
            raise invalid(f'"{at}" must be an object, found {_type_name(column)}.')
        column_type = get_enum(column, "type", at, COLUMN_TYPES, required=True)
        name = get_str(column, "name", at, required=True, min_len=1, max_len=MAX_COLUMN_NAME_LENGTH)
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
                raise invalid(f'"{at}.template" must be an object, found {_type_name(template)}.')
            language = get_enum(template, "language", f"{at}.template", ("jsonnet",), required=True)
            content = get_str(
                template, "content", f"{at}.template", required=True, min_len=1, max_len=MAX_TEMPLATE_LENGTH
            )
            canonical["template"] = {"language": language, "content": content}
            problem = _validate_template(content or "")
            if problem:
                raise invalid(f'Invalid column "{name}": {problem}.')
        result.append(canonical)
    try:
        Mapping(result)
    except ConfigError as exc:
        prefix = f'Invalid column "{exc.column}": ' if exc.column else "Invalid columns: "
        raise invalid(prefix + exc.message + ".") from None
    return result


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
        raise invalid(f'"body.settings" must be an array, found {_type_name(raw)}.')
    parsed: list[tuple[str, Any]] = []
    for index, item in enumerate(raw):
        at = f"body.settings[{index}]"
        if not isinstance(item, dict):
            raise invalid(f'"{at}" must be an object, found {_type_name(item)}.')
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
    for key, value in parsed:
        if value is None:
            values[key] = None
            continue
        definition = SETTINGS_BY_KEY[key]
        try:
            values[key] = definition.to_api(definition.parse(value))
        except SettingValueError as exc:
            raise invalid(f"Invalid settings value: {exc}.") from None
    return SettingsPatch(values, change_description)
