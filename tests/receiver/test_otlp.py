"""OTLP sources against a real ``pushstream serve``, with the official OpenTelemetry
Python SDK and its OTLP/HTTP exporters as the client: logs, every metric type and
traces as the documented records, protobuf and JSON, gzip on and off, the URL-secret
and bearer forms, partial success, and the requests that are refused."""

from __future__ import annotations

import gzip
import json
import random
import threading
import time
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
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as LogsRecord
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
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
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from receiver.otlpclient import OtlpStream, otlp_json
from receiver.test_crash import kill_tree
from serverprocess import ServerProcess
from streamclient import BASE, Stream, local_rows, table_rows

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


def rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch as the records write them ("" for 0)."""
    if not ns:
        return ""
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def sdk_metrics() -> Any:
    """One collection of a gauge, a counter (sum), a histogram and an exponential histogram."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        resource=RESOURCE,
        metric_readers=[reader],
        views=[View(instrument_name="latency.exp", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("app", "1.2")
    meter.create_gauge("temperature", unit="C", description="room").set(21.5, {"room": "a"})
    counter = meter.create_counter("requests", unit="1", description="served")
    counter.add(5, {"route": "/a"})
    counter.add(2, {"route": "/a"})
    histogram = meter.create_histogram("latency", unit="ms", description="lat")
    exponential = meter.create_histogram("latency.exp", unit="ms", description="exp")
    for value in (1, 7, 120):
        histogram.record(value)
    for value in (1, 2, 4):
        exponential.record(value)
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def expected_metrics(data: Any) -> list[dict[str, Any]]:
    (resource_metrics,) = data.resource_metrics
    (scope_metrics,) = resource_metrics.scope_metrics
    points = {m.name: (m, m.data.data_points[0]) for m in scope_metrics.metrics}
    common = {"resource": resource_json(), "scope": SCOPE}

    def head(name: str, kind: str) -> dict[str, Any]:
        metric, point = points[name]
        return {
            "metric_name": name,
            "metric_description": metric.description,
            "metric_unit": metric.unit,
            "metric_type": kind,
            "timestamp": rfc3339(point.time_unix_nano),
            "start_timestamp": rfc3339(point.start_time_unix_nano),
        }

    exp_point = points["latency.exp"][1]
    return [
        {**head("temperature", "gauge"), "attributes": {"room": "a"}, **common, "value": 21.5},
        {
            **head("requests", "sum"),
            "attributes": {"route": "/a"},
            **common,
            "value": 7,
            "is_monotonic": True,
            "aggregation_temporality": "cumulative",
        },
        {
            **head("latency", "histogram"),
            "attributes": {},
            **common,
            "aggregation_temporality": "cumulative",
            "count": 3,
            "sum": 128,
            "min": 1,
            "max": 120,
            "bucket_counts": [0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "explicit_bounds": [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000],
        },
        {
            **head("latency.exp", "exponential_histogram"),
            "attributes": {},
            **common,
            "aggregation_temporality": "cumulative",
            "count": 3,
            "sum": 7,
            "min": 1,
            "max": 4,
            "bucket_counts": {
                "positive": {"offset": exp_point.positive.offset, "counts": list(exp_point.positive.bucket_counts)},
                "negative": {"offset": exp_point.negative.offset, "counts": list(exp_point.negative.bucket_counts)},
            },
            "scale": exp_point.scale,
            "zero_count": 0,
        },
    ]


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_every_sdk_metric_type_from_the_exporter(
    server: ServerProcess, stream: OtlpStream, compression: Compression
) -> None:
    stream.otlp_sink("all", RECORD)
    data = sdk_metrics()
    exporter = OTLPMetricExporter(endpoint=f"{stream.url}/v1/metrics", compression=compression)
    assert exporter.export(data) == MetricExportResult.SUCCESS
    assert sum(1 for _ in data.resource_metrics[0].scope_metrics[0].metrics) == 4
    assert records(server) == expected_metrics(data)


def test_metrics_in_otlp_json(server: ServerProcess, stream: OtlpStream) -> None:
    stream.otlp_sink("all", RECORD)
    data = sdk_metrics()
    body = json.dumps(otlp_json(encode_metrics(data))).encode()
    response = requests.post(
        f"{stream.url}/v1/metrics", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert (response.status_code, response.json()) == (200, {})
    assert records(server) == expected_metrics(data)


def summary_request() -> ExportMetricsServiceRequest:
    """A summary (the SDK makes none): built with the OTLP protobuf classes."""
    point = SummaryDataPoint(
        attributes=[KeyValue(key="host", value=AnyValue(string_value="a"))],
        start_time_unix_nano=T0 - 123_456_789,
        time_unix_nano=T0,
        count=4,
        sum=10.5,
        quantile_values=[
            SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=2.0),
            SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=4.25),
        ],
    )
    metric = Metric(name="rpc", description="d", unit="s", summary=Summary(data_points=[point]))
    return ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=ProtoResource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="s"))]),
                scope_metrics=[ScopeMetrics(scope=InstrumentationScope(name="raw"), metrics=[metric])],
            )
        ]
    )


SUMMARY_RECORD = {
    "metric_name": "rpc",
    "metric_description": "d",
    "metric_unit": "s",
    "metric_type": "summary",
    "timestamp": "2026-12-01T05:00:00.123456789Z",
    "start_timestamp": "2026-12-01T05:00:00.000000000Z",
    "attributes": {"host": "a"},
    "resource": {"service.name": "s"},
    "scope": {"name": "raw", "version": ""},
    "count": 4,
    "sum": 10.5,
    "quantile_values": [{"quantile": 0.5, "value": 2.0}, {"quantile": 0.99, "value": 4.25}],
}


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_summary_as_raw_otlp(server: ServerProcess, stream: OtlpStream, encoding: str) -> None:
    stream.otlp_sink("all", RECORD)
    if encoding == "protobuf":
        body, headers = summary_request().SerializeToString(), PROTOBUF
    else:
        body, headers = json.dumps(otlp_json(summary_request())).encode(), {"Content-Type": "application/json"}
    response = requests.post(f"{stream.url}/v1/metrics", data=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert records(server) == [SUMMARY_RECORD]


def sdk_spans() -> list[Any]:
    """A parent span and a child with an event, a link and an error status."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("app", "1.2")
    with tracer.start_as_current_span("checkout", start_time=T0, end_on_exit=False) as parent:
        child = tracer.start_span(
            "charge",
            kind=SpanKind.CLIENT,
            start_time=T0 + 10,
            attributes={"amount": 9.5},
            links=[Link(parent.get_span_context(), {"why": "retry"})],
        )
        child.add_event("attempt", {"n": 1}, timestamp=T0 + 20)
        child.set_status(Status(StatusCode.ERROR, "card declined"))
        child.end(end_time=T1)
    parent.end(end_time=T1 + 5)
    provider.shutdown()
    return list(memory.get_finished_spans())


def expected_spans(spans: list[Any]) -> list[dict[str, Any]]:
    encoded = encode_spans(spans).resource_spans[0].scope_spans[0].spans
    flags = {span.name: span.flags for span in encoded}
    child, parent = spans
    trace_id = f"{parent.context.trace_id:032x}"
    common = {"resource": resource_json(), "scope": SCOPE}
    return [
        {
            "trace_id": trace_id,
            "span_id": f"{child.context.span_id:016x}",
            "parent_span_id": f"{parent.context.span_id:016x}",
            "trace_state": "",
            "name": "charge",
            "kind": "client",
            "timestamp": "2026-12-01T05:00:00.123456799Z",
            "end_timestamp": "2026-12-01T05:00:00.123457789Z",
            "status_code": "error",
            "status_message": "card declined",
            "flags": flags["charge"],
            "attributes": {"amount": 9.5},
            "events": [{"timestamp": "2026-12-01T05:00:00.123456809Z", "name": "attempt", "attributes": {"n": 1}}],
            "links": [
                {
                    "trace_id": trace_id,
                    "span_id": f"{parent.context.span_id:016x}",
                    "trace_state": "",
                    "attributes": {"why": "retry"},
                }
            ],
            **common,
        },
        {
            "trace_id": trace_id,
            "span_id": f"{parent.context.span_id:016x}",
            "parent_span_id": "",
            "trace_state": "",
            "name": "checkout",
            "kind": "internal",
            "timestamp": "2026-12-01T05:00:00.123456789Z",
            "end_timestamp": "2026-12-01T05:00:00.123457794Z",
            "status_code": "unset",
            "status_message": "",
            "flags": flags["checkout"],
            "attributes": {},
            "events": [],
            "links": [],
            **common,
        },
    ]


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_traces_with_events_and_links_from_the_exporter(
    server: ServerProcess, stream: OtlpStream, compression: Compression
) -> None:
    stream.otlp_sink("all", RECORD)
    spans = sdk_spans()
    exporter = OTLPSpanExporter(
        endpoint=f"{stream.base_url}/v1/traces",
        headers={"Authorization": f"Bearer {stream.secret}"},
        compression=compression,
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert records(server) == expected_spans(spans)


def test_traces_in_otlp_json(server: ServerProcess, stream: OtlpStream) -> None:
    stream.otlp_sink("all", RECORD)
    spans = sdk_spans()
    body = gzip.compress(json.dumps(otlp_json(encode_spans(spans))).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = requests.post(f"{stream.url}/v1/traces", data=body, headers=headers, timeout=30)
    assert (response.status_code, response.json()) == (200, {})
    assert records(server) == expected_spans(spans)


def test_sinks_take_the_signals_they_allow(server: ServerProcess, stream: OtlpStream) -> None:
    stream.otlp_sink("logs", [{"type": "path", "name": "body", "path": "body", "rawString": True}], ["logs"])
    stream.otlp_sink("traces", [{"type": "path", "name": "name", "path": "name", "rawString": True}], ["traces"])
    stream.otlp_sink("all", [{"type": "path", "name": "scope", "path": "scope.name", "rawString": True}])
    assert OTLPLogExporter(endpoint=f"{stream.url}/v1/logs").export(log_batch()) == LogRecordExportResult.SUCCESS
    assert OTLPSpanExporter(endpoint=f"{stream.url}/v1/traces").export(sdk_spans()) == SpanExportResult.SUCCESS
    assert local_rows(server.data_dir, "logs") == [['{"msg":"disk almost full","free":[1.5,2]}'], ["plain"]]
    assert local_rows(server.data_dir, "traces") == [["charge"], ["checkout"]]
    assert local_rows(server.data_dir, "all") == [["app"]] * 4
    sinks = server.request("GET", f"{BASE}/{stream.source_id}/sinks").json()["sinks"]
    assert {s["sinkId"]: s.get("allowedSignals") for s in sinks} == {
        "all": None,
        "logs": ["logs"],
        "traces": ["traces"],
    }


def test_all_sinks_rejecting_answers_the_worst_status(server: ServerProcess, stream: OtlpStream) -> None:
    stream.otlp_sink("user", [{"type": "path", "name": "user", "path": "attributes.user"}])
    body = encode_logs(log_batch()).SerializeToString()
    response = requests.post(f"{stream.url}/v1/logs", data=body, headers=PROTOBUF, timeout=30)
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "error": "stream.in.badRequest",
        "message": 'Written to 0/1 sinks: sink "user": record 2: column "user": '
        'path "attributes.user" not found in the body',
    }
    assert local_rows(server.data_dir) == []


def test_wrong_secret_is_an_unknown_source(stream: OtlpStream, server: ServerProcess) -> None:
    stream.otlp_sink("all", RECORD)
    body = encode_logs(log_batch()).SerializeToString()
    wrong = stream.url[: -len(stream.secret)] + "x" * 48
    for url, headers in [
        (f"{wrong}/v1/logs", PROTOBUF),
        (f"{stream.base_url}/v1/logs", {**PROTOBUF, "Authorization": "Bearer " + "x" * 48}),
        (f"{stream.base_url}/v1/logs", PROTOBUF),
        (f"{stream.base_url}/v1/logs", {**PROTOBUF, "Authorization": f"Basic {stream.secret}"}),
    ]:
        response = requests.post(url, data=body, headers=headers, timeout=30)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    # An HTTP source's secret is no OTLP source, and an OTLP source takes nothing on /stream/.
    http = Stream(server, "web").create()
    http_secret = http.url.rsplit("/", 1)[1]
    response = requests.post(
        f"{stream.base_url.rsplit('/', 1)[0]}/web/{http_secret}/v1/logs", data=body, headers=PROTOBUF, timeout=30
    )
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    stream_url = stream.url.replace("/otlp/", "/stream/")
    response = requests.post(stream_url, data="{}", headers={"Content-Type": "application/json"}, timeout=30)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert local_rows(server.data_dir) == []


def test_refused_bodies_are_clear_4xx_and_write_nothing(server_factory: Any) -> None:
    server: ServerProcess = server_factory(args=("--max-batch-size", "64KB", "--max-record-size", "16KB"))
    stream = OtlpStream(server).create()
    stream.otlp_sink("all", RECORD)
    logs = f"{stream.url}/v1/logs"

    def post(body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = requests.post(logs, data=body, headers=headers, timeout=30)
        return response.status_code, response.json()

    status, answer = post(b"\x0a\xff\xff\xff", PROTOBUF)
    assert status == 400 and answer["error"] == "stream.in.badRequest"
    assert answer["message"].startswith("invalid OTLP protobuf body: ")
    assert post(b"{", {"Content-Type": "application/json"}) == (
        400,
        {
            "statusCode": 400,
            "error": "stream.in.badRequest",
            "message": "invalid OTLP JSON body: malformed JSON: EOF while parsing an object at line 1 column 1",
        },
    )
    assert post(b"{}", {"Content-Type": "text/plain"}) == (
        415,
        {
            "statusCode": 415,
            "error": "stream.in.unsupportedContentType",
            "message": 'Content type "text/plain" is not supported by OTLP/HTTP: use "application/x-protobuf" '
            'or "application/json".',
        },
    )
    assert post(b"{}", {"Content-Type": "application/json", "Content-Encoding": "br"})[0] == 415
    status, answer = post(b"\0" * (65 << 10), PROTOBUF)
    assert (status, answer["error"]) == (413, "stream.in.bodyTooLarge")
    # Small once compressed, over the limit once decompressed.
    bomb = gzip.compress(b"\0" * (8 << 20))
    assert len(bomb) < 64 << 10
    assert post(bomb, {**PROTOBUF, "Content-Encoding": "gzip"}) == (
        413,
        {
            "statusCode": 413,
            "error": "stream.in.bodyTooLarge",
            "message": 'Request body size is over the maximum "65536B" once decompressed.',
        },
    )
    status, answer = post(b"not gzip", {**PROTOBUF, "Content-Encoding": "gzip"})
    assert status == 400 and answer["message"].startswith("the gzip body cannot be decompressed")
    assert local_rows(server.data_dir) == []


def test_cors_preflight_and_routes(stream: OtlpStream) -> None:
    for url in (f"{stream.url}/v1/logs", f"{stream.base_url}/v1/metrics"):
        response = requests.options(url, timeout=30)
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Access-Control-Allow-Methods"] == "OPTIONS, POST"
        assert response.headers["Access-Control-Allow-Headers"] == "*"
    response = requests.post(f"{stream.url}/v1/profiles", data=b"", headers=PROTOBUF, timeout=30)
    assert (response.status_code, response.json()["error"]) == (404, "stream.in.routeNotFound")
    response = requests.get(f"{stream.url}/v1/logs", timeout=30)
    assert (response.status_code, response.json()["error"]) == (405, "stream.in.methodNotAllowed")


def numbered_logs(first: int, count: int) -> bytes:
    """An OTLP protobuf export of ``count`` log records numbered from ``first`` (attribute ``n``)."""
    log_records = [
        LogsRecord(
            time_unix_nano=T0 + n,
            severity_number=9,
            body=AnyValue(string_value=f"event {n} " + "x" * (n % 500)),
            attributes=[KeyValue(key="n", value=AnyValue(int_value=n))],
        )
        for n in range(first, first + count)
    ]
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(scope_logs=[ScopeLogs(scope=InstrumentationScope(name="load"), log_records=log_records)])
        ]
    )
    return request.SerializeToString()


@pytest.mark.parametrize("run", range(2))
def test_kill_9_under_otlp_load_loses_no_acknowledged_record(server_factory: Any, run: int) -> None:
    server: ServerProcess = server_factory(args=("--workers", "2"))
    stream = OtlpStream(server).create()
    stream.otlp_sink(
        "crash",
        [{"type": "path", "name": "n", "path": "attributes.n"}, {"type": "path", "name": "body", "path": "body"}],
    )
    stream.settings("crash", **{"storage.level.staging.upload.trigger.interval": "1s"})
    stop = threading.Event()
    acknowledged: list[int] = []
    lock = threading.Lock()
    per_export = 20

    def client(offset: int) -> None:
        session = requests.Session()
        first = offset * 10_000_000
        while not stop.is_set():
            try:
                response = session.post(
                    f"{stream.url}/v1/logs", data=numbered_logs(first, per_export), headers=PROTOBUF, timeout=5
                )
            except requests.RequestException:
                return  # the server is gone
            if response.status_code == 200 and response.content == b"":
                with lock:
                    acknowledged.extend(range(first, first + per_export))
            first += per_export

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(random.Random(run).uniform(1.0, 2.5))
    kill_tree(server)
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) > 100

    server.start()
    result = stream.flush(wait=60)
    assert result["imported"], result
    rows = table_rows(server.data_dir, "in.c-otlp.crash")
    numbers = [int(r[0]) for r in rows]
    assert len(numbers) == len(set(numbers)), "a record was imported twice"
    assert set(acknowledged) <= set(numbers), "an acknowledged record is missing"
    for n, body in rows:
        assert json.loads(body) == f"event {n} " + "x" * (int(n) % 500)


def test_source_test_endpoint_takes_a_flattened_record_and_a_signal(server: ServerProcess, stream: OtlpStream) -> None:
    stream.otlp_sink("logs", [{"type": "path", "name": "body", "path": "body", "rawString": True}], ["logs"])
    stream.otlp_sink("spans", [{"type": "path", "name": "name", "path": "name", "rawString": True}], ["traces"])
    path = f"{BASE}/{stream.source_id}/test"
    record = {"name": "GET /", "body": "hello", "scope": {"name": "", "version": ""}}

    def tables(query: str) -> list[dict[str, Any]]:
        response = server.request("POST", path + query, json=record)
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()["tables"]
        return result

    assert tables("") == [
        {"sinkId": "logs", "tableId": "in.c-otlp.logs", "rows": [{"columns": [{"name": "body", "value": "hello"}]}]}
    ]
    assert tables("?signal=traces") == [
        {"sinkId": "spans", "tableId": "in.c-otlp.spans", "rows": [{"columns": [{"name": "name", "value": "GET /"}]}]}
    ]
    assert tables("?signal=metrics") == []
    response = server.request("POST", path + "?signal=profiles", json=record)
    assert response.status_code == 400


def test_disabled_source_and_rotated_secret(server: ServerProcess, stream: OtlpStream) -> None:
    stream.otlp_sink("all", RECORD)
    body = encode_logs(log_batch()).SerializeToString()
    old_url = stream.url
    rotated = server.request("POST", f"{BASE}/{stream.source_id}/rotate-secret")
    assert rotated.status_code == 200
    stream.refresh_url()
    response = requests.post(f"{old_url}/v1/logs", data=body, headers=PROTOBUF, timeout=30)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    response = requests.post(f"{stream.url}/v1/logs", data=body, headers=PROTOBUF, timeout=30)
    assert (response.status_code, response.content) == (200, b"")
    stream.wait_task(server.request("PUT", f"{BASE}/{stream.source_id}/disable"))
    response = requests.post(f"{stream.url}/v1/logs", data=body, headers=PROTOBUF, timeout=30)
    assert (response.status_code, response.json()) == (
        404,
        {
            "statusCode": 404,
            "error": "stream.in.disabledSource",
            "message": "The specified source is disabled in all branches.",
        },
    )
    assert len(records(server)) == 2
