"""``GET /metrics`` of a real ``pushstream serve``: parsed with prometheus_client's
parser, every value checked against the traffic sent."""

from __future__ import annotations

from typing import Any

import orjson
import requests
from opstest import BASE, create_stream, sample, scrape, scrape_until

from pushstream.metrics import metrics_dir
from serverprocess import ServerProcess


def test_metrics_count_the_traffic(server_factory: Any) -> None:
    server: ServerProcess = server_factory()
    source, url = create_stream(server)
    for i in range(3):
        assert requests.post(url, json={"id": str(i)}, timeout=30).status_code == 200
    batch = b"".join(orjson.dumps({"id": f"b{i}"}) + b"\n" for i in range(4))
    response = requests.post(url, data=batch, headers={"Content-Type": "application/x-ndjson"}, timeout=30)
    assert response.status_code == 200, response.text
    # Not JSON: the path column cannot be read, the sink refuses the event.
    bad = requests.post(url, data=b"not json", headers={"Content-Type": "application/json"}, timeout=30)
    assert bad.status_code == 400, bad.text
    wrong = url.rsplit("/", 1)[0] + "/wrong-secret"
    assert requests.post(wrong, json={"id": "x"}, timeout=30).status_code == 404
    assert requests.get(url, timeout=30).status_code == 405

    samples = scrape(server)
    requests_total = "pushstream_ingest_requests_total"
    assert sample(samples, requests_total, source=source, status="200") == 4
    assert sample(samples, requests_total, source=source, status="400") == 1
    assert sample(samples, requests_total, source="", status="404") == 1
    assert sample(samples, requests_total, source="", status="405") == 1
    events = "pushstream_ingest_events_total"
    assert sample(samples, events, source=source, sink="rows", outcome="processed") == 7
    assert sample(samples, events, source=source, sink="rows", outcome="malformed_body") == 1
    assert sample(samples, "pushstream_ingest_request_duration_seconds_count") == 7
    # The core's counters, copied at the scrape by the one worker that wrote them.
    assert sample(samples, "pushstream_slice_rows_written_total") == 7
    written = sample(samples, "pushstream_slice_bytes_written_total")
    slice_dir = server.data_dir / "local"
    on_disk = sum(p.stat().st_size for p in slice_dir.rglob("*.csv"))
    assert written == on_disk
    rounds = sample(samples, "pushstream_group_commit_rounds_total")
    assert rounds is not None and 1 <= rounds <= 4
    # Disk mode: every round is made durable by at least one fdatasync.
    fsyncs = sample(samples, "pushstream_fsync_duration_seconds_count")
    assert fsyncs is not None and fsyncs >= 1
    assert sample(samples, "pushstream_fsync_duration_seconds_bucket", le="+Inf") == fsyncs
    key = {"branch": "1", "source": source, "sink": "rows"}
    assert sample(samples, "pushstream_files", **key, state="writing") == 1
    assert sample(samples, "pushstream_slices", **key, state="writing") == 1
    assert sample(samples, "pushstream_oldest_unimported_file_age_seconds", **key) == 0
    assert sample(samples, "pushstream_import_retries_pending", **key) == 0
    revisions = [v for (name, _), v in samples.items() if name == "pushstream_config_revision"]
    assert len(revisions) == 1
    assert revisions[0] >= 2  # a source and a sink were created

    response = server.request("POST", f"{BASE}/{source}/flush?wait=60")
    assert response.status_code == 200, response.text
    imports = "pushstream_imports_total"
    # The coordinator counts the import just after recording it.
    samples = scrape_until(server, lambda s: sample(s, imports, source=source, sink="rows", outcome="imported") == 1)
    assert sample(samples, imports, source=source, sink="rows", outcome="imported") == 1
    assert sample(samples, "pushstream_imported_rows_total", source=source, sink="rows") == 7
    assert sample(samples, "pushstream_import_duration_seconds_count") == 1
    assert sample(samples, "pushstream_files", **key, state="imported") == 1
    assert sample(samples, "pushstream_files", **key, state="writing") == 1


def test_metrics_across_workers(server_factory: Any) -> None:
    server: ServerProcess = server_factory(args=("--workers", "2"))
    source, url = create_stream(server)
    for i in range(20):
        assert requests.post(url, json={"id": str(i)}, timeout=30).status_code == 200
    requests_total = "pushstream_ingest_requests_total"
    # The worker that does not answer the scrape adds its counts every second.
    samples = scrape_until(
        server,
        lambda s: (
            sample(s, "pushstream_slice_rows_written_total") == 20
            and sample(s, requests_total, source=source, status="200") == 20
        ),
    )
    assert sample(samples, requests_total, source=source, status="200") == 20
    assert sample(samples, "pushstream_ingest_events_total", source=source, sink="rows", outcome="processed") == 20
    assert sample(samples, "pushstream_slice_rows_written_total") == 20


def test_metrics_token(server_factory: Any) -> None:
    server: ServerProcess = server_factory(args=("--metrics-token", "scrape-me"))
    response = requests.get(f"{server.url}/metrics", timeout=30)
    assert response.status_code == 401
    assert response.json()["error"] == "stream.api.unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"
    wrong = requests.get(f"{server.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401
    samples = scrape(server, headers={"Authorization": "Bearer scrape-me"})
    assert ("pushstream_slice_rows_written_total", ()) in samples
    # The processes' values live off the data disk (a full disk must not SIGBUS
    # their memory maps) and go away with the server.
    shared = metrics_dir(server.data_dir)
    assert shared.is_dir() and not shared.is_relative_to(server.data_dir)
    server.stop()
    assert not shared.exists()
