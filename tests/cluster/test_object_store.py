"""The S3-compatible server of the tests (s3s-fs, ``tests/s3server.py``) through the
object store client pushstream uses (obstore, chosen in bench/README.md): what the
staging of later steps needs — write, list, read, delete — and objects that
survive a restart of the server."""

from __future__ import annotations

import obstore
import pytest
from obstore.exceptions import GenericError, PermissionDeniedError
from obstore.store import S3Store

from s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server


def _store(server: S3Server, *, retries: int = 10) -> S3Store:
    return S3Store(
        "pushstream",
        endpoint=server.endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region=REGION,
        client_options={"allow_http": True},
        retry_config={"max_retries": retries},
    )


def _keys(store: S3Store, prefix: str | None = None) -> list[str]:
    return sorted(meta["path"] for batch in obstore.list(store, prefix) for meta in batch)


def test_write_list_read_delete(s3_server: S3Server) -> None:
    store = _store(s3_server)
    slice_bytes = bytes(range(256)) * 4096  # 1 MiB
    put = obstore.put(store, "staging/1/s/k/F/S1.csv.zst", slice_bytes)
    assert put["e_tag"]
    obstore.put(store, "staging/1/s/k/F/S2.csv.zst", b"second")
    obstore.put(store, "other/x", b"x")

    assert _keys(store, "staging/1/s/k/F") == ["staging/1/s/k/F/S1.csv.zst", "staging/1/s/k/F/S2.csv.zst"]
    assert obstore.get(store, "staging/1/s/k/F/S1.csv.zst").bytes().to_bytes() == slice_bytes
    assert obstore.head(store, "staging/1/s/k/F/S2.csv.zst")["size"] == 6

    obstore.delete(store, ["staging/1/s/k/F/S1.csv.zst", "staging/1/s/k/F/S2.csv.zst"])
    assert _keys(store) == ["other/x"]
    with pytest.raises(FileNotFoundError):
        obstore.get(store, "staging/1/s/k/F/S1.csv.zst")


def test_objects_survive_a_restart_of_the_server(s3_server: S3Server) -> None:
    obstore.put(_store(s3_server), "kept", b"durable")
    s3_server.stop()
    # While it is away: a connection error (after the client's retries), not a missing object.
    with pytest.raises(GenericError, match="error sending request"):
        obstore.get(_store(s3_server, retries=0), "kept")
    s3_server.start()
    assert obstore.get(_store(s3_server), "kept").bytes().to_bytes() == b"durable"


def test_wrong_credentials_are_refused(s3_server: S3Server) -> None:
    store = S3Store(
        "pushstream",
        endpoint=s3_server.endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key="not-the-secret",
        region=REGION,
        client_options={"allow_http": True},
    )
    with pytest.raises(PermissionDeniedError, match=r"403 Forbidden.*SignatureDoesNotMatch"):
        obstore.put(store, "x", b"x")
