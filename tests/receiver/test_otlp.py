"""OTLP sources against a real ``pushstream serve``, with the official OpenTelemetry
Python SDK and its OTLP/HTTP exporters as the client: logs, every metric type and
traces as the documented records, protobuf and JSON, gzip on and off, the URL-secret
and bearer forms, partial success, and the requests that are refused."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
import requests
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Metric,
    ResourceMetrics,
    ScopeMetrics,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from receiver.otlpclient import OtlpStream, otlp_json
from serverprocess import ServerProcess
from streamclient import BASE, Stream, local_rows

RECORD = [{"type": "body", "name": "record"}]
RESOURCE = Resource.create({"service.name": "shop", "deployment": "test"})
SCOPE = {"name": "app", "version": "1.2"}
# 2026-12-01T05:00:00.123456789Z and a microsecond later.
T0 = 1_796_101_200_123_456_789
T1 = T0 + 1_000
PROTOBUF = {"Content-Type": "application/x-protobuf"}
NOT_FOUND = {
    "statusCode": 404,
    "error": "stream.in.noSourceFound",
    "message": "The specified combination of projectID, sourceID and secret was not found.",
}


@pytest.fixture
def stream(server: ServerProcess) -> OtlpStream:
    return OtlpStream(server).create()


def records(server: ServerProcess, sink_id: str = "all") -> list[dict[str, Any]]:
    return [json.loads(row[0]) for row in local_rows(server.data_dir, sink_id)]


def resource_json() -> dict[str, Any]:
    return dict(RESOURCE.attributes)


def log_batch() -> list[Any]:
    """Two log records made by the SDK (as its logging pipeline hands them to an exporter)."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("app", "1.2")
    logger.emit(
        LogRecord(
            timestamp=T0,
            observed_timestamp=T1,
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0xB7AD6B7169203331,
            severity_text="WARN",
            severity_number=SeverityNumber.WARN,
            body={"msg": "disk almost full", "free": [1.5, 2]},
            attributes={"user": "jan", "retries": 3, "ok": False},
        )
    )
    logger.emit(LogRecord(observed_timestamp=T1, severity_number=SeverityNumber.INFO, body="plain"))
    provider.shutdown()
    return list(memory.get_finished_logs())


LOG_RECORDS = [
    {
        "timestamp": "2026-12-01T05:00:00.123456789Z",
        "observed_timestamp": "2026-12-01T05:00:00.123457789Z",
        "severity_number": 13,
        "severity_text": "WARN",
        "body": {"msg": "disk almost full", "free": [1.5, 2]},
        "flags": 0,
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
        "attributes": {"user": "jan", "retries": 3, "ok": False},
        "resource": None,  # filled in by the tests: the SDK's resource
        "scope": SCOPE,
    },
    {
        "timestamp": "",
        "observed_timestamp": "2026-12-01T05:00:00.123457789Z",
        "severity_number": 9,
        "severity_text": "",
        "body": "plain",
        "flags": 0,
        "attributes": {},
        "resource": None,
        "scope": SCOPE,
    },
]


def expected_logs() -> list[dict[str, Any]]:
    return [{**record, "resource": resource_json()} for record in LOG_RECORDS]


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_logs_from_the_sdk_exporter_with_the_secret_in_the_url(
    server: ServerProcess, stream: OtlpStream, compression: Compression
) -> None:
    stream.otlp_sink("all", RECORD)
    exporter = OTLPLogExporter(endpoint=f"{stream.url}/v1/logs", compression=compression)
    assert exporter.export(log_batch()) == LogRecordExportResult.SUCCESS
    assert records(server) == expected_logs()


def test_logs_from_the_sdk_exporter_with_a_bearer_secret(server: ServerProcess, stream: OtlpStream) -> None:
    stream.otlp_sink("all", RECORD)
    exporter = OTLPLogExporter(
        endpoint=f"{stream.base_url}/v1/logs",
        headers={"Authorization": f"bearer {stream.secret}"},
        compression=Compression.Gzip,
    )
    assert exporter.export(log_batch()) == LogRecordExportResult.SUCCESS
    assert records(server) == expected_logs()


@pytest.mark.parametrize("compressed", [False, True])
def test_logs_in_otlp_json(server: ServerProcess, stream: OtlpStream, compressed: bool) -> None:
    stream.otlp_sink("all", RECORD)
    body = json.dumps(otlp_json(encode_logs(log_batch()))).encode()
    headers = {"Content-Type": "application/json"}
    if compressed:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    response = requests.post(f"{stream.url}/v1/logs", data=body, headers=headers, timeout=30)
    assert (response.status_code, response.headers["Content-Type"], response.json()) == (200, "application/json", {})
    assert records(server) == expected_logs()


def test_the_answer_is_an_empty_export_response(stream: OtlpStream) -> None:
    stream.otlp_sink("all", RECORD)
    body = encode_logs(log_batch()).SerializeToString()
    response = requests.post(f"{stream.url}/v1/logs", data=body, headers=PROTOBUF, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.content == b""
    assert ExportLogsServiceResponse.FromString(response.content) == ExportLogsServiceResponse()


def test_authorization_never_reaches_the_records_and_partial_success(server: ServerProcess, stream: OtlpStream) -> None:
    stream.otlp_sink("headers", [{"type": "headers", "name": "headers"}])
    template = {"language": "jsonnet", "content": 'Header("Authorization")'}
    stream.otlp_sink("auth", [{"type": "template", "name": "auth", "template": template}])
    body = encode_logs(log_batch()).SerializeToString()
    headers = {**PROTOBUF, "Authorization": f"Bearer {stream.secret}", "X-Tenant": "t1"}
    response = requests.post(f"{stream.base_url}/v1/logs", data=body, headers=headers, timeout=30)
    # One sink took both records, the other none: 200 with partial_success.
    assert response.status_code == 200, response.text
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 2
    assert answer.partial_success.error_message == (
        'Written to 1/2 sinks: sink "auth": record 1: column "auth": header "Authorization" not found'
    )
    rows = local_rows(server.data_dir, "headers")
    assert len(rows) == 2
    for (headers_json,) in rows:
        sent = json.loads(headers_json)
        assert "Authorization" not in sent and sent["X-Tenant"] == "t1"
    assert local_rows(server.data_dir, "auth") == []
