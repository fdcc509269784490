"""No acknowledged row blocks the others: rows of any length the receiver accepts
are imported, and rows a target refuses go to the sink's rejected rows (with the
reason, counted in the statistics, listed by ``pushstream rejected``) while the
rest of their file is imported."""

from __future__ import annotations

import json

from serverprocess import ServerProcess
from streamclient import Stream, table_rows


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
