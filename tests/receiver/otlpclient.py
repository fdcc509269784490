"""Helpers of the OTLP source tests and benchmark: an ``otlp`` source on a running
server, OTLP bodies made by the official OpenTelemetry Python SDK (its encoders
are what its OTLP/HTTP exporters send), and their OTLP JSON form."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from serverprocess import ServerProcess
from streamclient import BASE, Stream

#: The fields of OTLP JSON that are ids: hex there, base64 in protobuf's JSON mapping.
_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


class OtlpStream(Stream):
    """An ``otlp`` source with sinks on a running server."""

    def __init__(self, server: ServerProcess, source_id: str = "telemetry") -> None:
        super().__init__(server, source_id)
        self.base_url = ""
        self.secret = ""

    def create(self, **settings: Any) -> OtlpStream:
        body: dict[str, Any] = {"sourceId": self.source_id, "name": self.source_id, "type": "otlp"}
        self.wait_task(self.server.request("POST", BASE, json=body))
        if settings:
            self.settings(**settings)
        self.refresh_url()
        return self

    def refresh_url(self) -> str:
        source = self.server.request("GET", f"{BASE}/{self.source_id}").json()
        self.url = source["otlp"]["url"]
        self.base_url = source["otlp"]["baseUrl"]
        self.secret = source["otlp"]["secret"]
        return self.url

    def otlp_sink(self, sink_id: str, columns: list[dict[str, Any]], signals: list[str] | None = None) -> None:
        """A sink of the source; ``signals`` become its ``allowedSignals``."""
        table = {"type": "keboola", "tableId": f"in.c-otlp.{sink_id}", "mapping": {"columns": columns}}
        body: dict[str, Any] = {"sinkId": sink_id, "name": sink_id, "type": "table", "table": table}
        if signals is not None:
            body["allowedSignals"] = signals
        self.wait_task(self.server.request("POST", f"{BASE}/{self.source_id}/sinks", json=body))


def otlp_json(message: Message) -> dict[str, Any]:
    """A protobuf OTLP request as OTLP JSON: protobuf's JSON mapping (camelCase,
    int64 as strings, enums as integers) with trace and span ids in hex."""
    document = MessageToDict(message, use_integers_for_enums=True)
    _hex_ids(document)
    return document


def _hex_ids(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_FIELDS and isinstance(value, str):
                node[key] = base64.b64decode(value).hex()
            else:
                _hex_ids(value)
    elif isinstance(node, list):
        for item in node:
            _hex_ids(item)
