"""No acknowledged row blocks the others: rows of any length the receiver accepts
are imported, and rows a target refuses go to the sink's rejected rows (with the
reason, counted in the statistics, listed by ``pushstream rejected``) while the
rest of their file is imported."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from pgcluster import PgCluster
from serverprocess import PUSHSTREAM, ServerProcess
from streamclient import BASE, Stream, table_rows


def test_a_row_longer_than_the_readers_block_is_imported(server: ServerProcess) -> None:
    # A 750 KB record (under the default 1 MB limit) of empty strings: CSV doubles
    # every quote, so with three columns of it its row is ~4 MB, longer than the
    # staging reader's block (1 MB without a key; a row may straddle one block
    # boundary, not two), inside a file with other rows.
    stream = Stream(server).create()
    columns = [
        {"type": "path", "name": "n", "path": "n"},
        {"type": "body", "name": "body"},
        {"type": "path", "name": "empty", "path": "empty"},
        {"type": "body", "name": "again"},
    ]
    stream.sink("events", columns, "in.c-test.events")
    big = json.dumps({"n": 1, "empty": [""] * 250_000}, separators=(",", ":"))
    assert len(big) < 1 << 20
    bodies = [json.dumps({"n": 0, "empty": []}), big, json.dumps({"n": 2, "empty": [""]})]
    for body in bodies:
        assert stream.post(body).status_code == 200
    result = stream.flush(wait=60)
    assert result["imported"], result
    expected = [
        (str(i), body, json.dumps(json.loads(body)["empty"], separators=(",", ":")), body)
        for i, body in enumerate(bodies)
    ]
    assert table_rows(server.data_dir, "in.c-test.events") == expected


def test_postgresql_refused_rows_are_rejected_and_the_rest_imported(
    server_factory: Any, pg_admin_url: str, pg_cluster: PgCluster
) -> None:
    server: ServerProcess = server_factory(args=("--target", pg_admin_url))
    stream = Stream(server).create()
    columns = [
        {"type": "path", "name": "n", "path": "n"},
        {"type": "path", "name": "k", "path": "k", "rawString": True},
    ]
    stream.sink("pg", columns, "in.c-test.pg")
    lines = [json.dumps({"n": n, "k": "a\u0000b" if n in (3, 7) else f"v{n}"}) for n in range(10)]
    response = stream.post("\n".join(lines), {"Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    result = stream.flush(wait=60)
    assert result["imported"], result

    database = pg_admin_url.rsplit("/", 1)[1]
    rows = pg_cluster.execute('SELECT n, k FROM "in.c-test"."pg" ORDER BY n::int', database=database)
    assert rows == [(str(n), f"v{n}") for n in range(10) if n not in (3, 7)]
    statistics = stream.statistics("pg")
    assert statistics["rejected"] == {"recordsCount": 2}
    assert statistics["levels"]["target"]["recordsCount"] == 10
    files = server.request("GET", f"{BASE}/events/sinks/pg/statistics/files").json()["files"]
    assert files[-1]["state"] == "imported"
    assert files[-1]["statistics"]["rejected"] == {"recordsCount": 2}

    listed = subprocess.run(
        [*PUSHSTREAM, "rejected", "events", "pg", "--data-dir", str(server.data_dir), "-o", "ndjson"],
        capture_output=True,
        text=True,
        check=True,
    )
    rejected = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["row"] for r in rejected] == [{"n": "3", "k": "a\u0000b"}, {"n": "7", "k": "a\u0000b"}]
    assert all("0x00" in r["reason"] and r["fileId"] == rejected[0]["fileId"] for r in rejected)
    table = subprocess.run(
        [*PUSHSTREAM, "rejected", "events", "pg", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "0x00" in table.stdout and '"n":"3"' in table.stdout
