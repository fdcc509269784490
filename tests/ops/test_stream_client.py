"""``pushstream.client.StreamClient`` against a real server: one event, a refused
event, a wrong URL, batches."""

from __future__ import annotations

import pytest
from opstest import create_stream

from pushstream.client import StreamClient
from pushstream.client.errors import RejectedError, ServerError
from serverprocess import ServerProcess


def test_stream_client(server: ServerProcess) -> None:
    _, url = create_stream(server, "client")
    with StreamClient(url, retries=0) as client:
        result = client.send({"id": "1"})
        assert (result.records, result.batches, result.retries) == (1, 1, 0)
        assert client.send(b'{"id": "2"}').records == 1
        with pytest.raises(RejectedError) as refused:
            client.send({"no id": True})
        assert refused.value.message.startswith('the server rejected the event: sink "rows": ')
        assert 'path "id" not found' in refused.value.message
        assert client.send_many({"id": str(n)} for n in range(3, 103)).records == 100
    with pytest.raises(ServerError) as missing, StreamClient(url + "x", retries=0) as wrong:
        wrong.send({"id": "x"})
    assert (missing.value.status, missing.value.error) == (404, "stream.in.noSourceFound")
    found = StreamClient.for_source(server.url, server.token, "client")
    assert found.url == url
