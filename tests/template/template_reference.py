"""The reference of template columns: the C++ ``jsonnet`` package from PyPI, with the
pushstream globals emulated by a Jsonnet prelude over external variables and
native callbacks, and helpers to evaluate the same template with the Rust core."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import _jsonnet

from mapping_reference import canonical_header_name, canonical_headers, format_datetime
from pushstream import Mapping, Record

# Missing paths and headers fail with the same message as in the core.
PRELUDE = """
local Ip() = std.extVar("ip");
local Body(path=null, default=error ('path "' + path + '" not found in the body')) =
  if path == null then std.extVar("body")
  else local found = std.native("lookup")(path); if found[0] then found[1] else default;
local BodyStr() = std.extVar("body_str");
local Header(name=null, default=error ('header "' + std.native("canonical")(name) + '" not found')) =
  local headers = std.extVar("headers");
  if name == null then headers
  else local key = std.native("canonical")(name); if std.objectHas(headers, key) then headers[key] else default;
local HeaderStr() =
  local headers = std.extVar("headers");
  std.join("", [k + ": " + headers[k] + "\\n" for k in std.objectFields(headers)]);
local Now(format=null) = if format == null then std.extVar("now") else std.native("strftime")(format);
"""

_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def lookup(body: Any, path: str) -> tuple[bool, Any]:
    value = body
    for key, index in _PATH_TOKEN.findall(path):
        if key and isinstance(value, dict) and key in value:
            value = value[key]
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return False, None
    return True, value


def strftime(format: str, received_at_ns: int) -> str:
    """Python's strftime (C locale, UTC) with ``%f`` as milliseconds."""
    moment = datetime.fromtimestamp(received_at_ns // 1_000_000_000, tz=UTC)
    millis = f"{received_at_ns // 1_000_000 % 1000:03d}"
    return moment.strftime(re.sub(r"%(.)", lambda m: millis if m.group(1) == "f" else m.group(0), format))


class Event:
    """One record, given to both implementations."""

    def __init__(
        self,
        body: Any,
        headers: dict[str, str] | None = None,
        ip: str = "10.0.0.1",
        received_at_ns: int = 1_700_000_000_123_456_789,
        raw: bytes | None = None,
    ) -> None:
        self.body = body
        self.raw = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.ip = ip
        self.received_at_ns = received_at_ns

    def record(self) -> Record:
        return Record(self.raw, self.headers, self.ip, self.received_at_ns)


def reference(template: str, event: Event) -> str:
    """The JSON the C++ implementation manifests for ``template`` (raises RuntimeError)."""
    headers = canonical_headers(event.headers)
    return _jsonnet.evaluate_snippet(
        "template",
        PRELUDE + template,
        ext_vars={
            "ip": event.ip,
            "body_str": event.raw.decode(),
            "now": format_datetime(event.received_at_ns),
        },
        ext_codes={"body": json.dumps(event.body), "headers": json.dumps(headers)},
        native_callbacks={
            "lookup": (("path",), lambda path: list(lookup(event.body, path))),
            "canonical": (("name",), canonical_header_name),
            "strftime": (("format",), lambda format: strftime(format, event.received_at_ns)),
        },
    )


def column(template: str, raw_string: bool = False) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "type": "template",
        "name": "t",
        "template": {"language": "jsonnet", "content": template},
    }
    if raw_string:
        definition["rawString"] = True
    return definition


def core(template: str, event: Event, raw_string: bool = False) -> str:
    """The value the Rust core writes for ``template`` (raises MappingError)."""
    return Mapping([column(template, raw_string)]).map(event.record())[0]


def canonical(text: str) -> str:
    """JSON text in a form where equal values compare equal: integers keep all their
    digits, doubles are written in shortest form, keys sorted."""
    return json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False)
