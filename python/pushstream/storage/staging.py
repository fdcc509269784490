"""Shared staging: the compressed slices of every node in one place that every
node reaches — an S3 bucket (``--staging s3://bucket/prefix``) or a directory all
nodes mount (``--staging file:///path``), through ``obstore`` (the Rust
``object_store`` crate; measured against pyarrow's S3 filesystem in
``bench/bench_object_store.py``).

Without ``--staging`` the data dir's own ``staging/`` folder is used and nothing
here is involved (one node, one disk).

With shared staging each node uploads its own part of a slice — the rows its
receiver processes wrote — as one object, next to the part's append index (the
receive time of each append), so that the importing node can put the parts of
several nodes back into receive order (a primary key's last write wins by
receive time, whichever node took it):

```
<prefix>/<branch>/<source>/<sink>/<file>/<slice>/<node>.csv.zst
<prefix>/<branch>/<source>/<sink>/<file>/<slice>/<node>.idx
```

An upload is idempotent (the same key is written again after a crash) and
verified (the stored size is read back before the part counts as uploaded).
Errors of the store surface as :class:`StagingError` after a few quick retries,
so that a store that is away fails the step promptly and the coordinator tries
again on its next tick.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import obstore
from obstore.store import LocalStore, ObjectStore, S3Store

from pushstream.errors import PushstreamError
from pushstream.storage.layout import SinkKey
from pushstream.storage.state import SliceRef

#: The schemes ``--staging`` accepts.
SCHEMES = ("s3", "file")
#: Retries of one store request: few and short, a store that is away must not hold a tick for long.
RETRY_CONFIG: Any = {
    "max_retries": 2,
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1), "base": 2},
    "retry_timeout": timedelta(seconds=10),
}
CLIENT_OPTIONS: Any = {"connect_timeout": timedelta(seconds=5), "timeout": timedelta(seconds=120)}


class StagingError(PushstreamError):
    """The shared staging store refused or failed a request (it is away, denies
    access, or an upload did not read back as written)."""


def check_staging_url(url: str) -> str:
    """Validates a ``--staging`` URL; returns it normalised (no trailing slash).
    Raises ``ValueError`` with a message for the user."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"--staging must be an s3://bucket/prefix or file:///path URL, not {url!r}")
    if parts.scheme == "s3" and not parts.netloc:
        raise ValueError(f"--staging {url!r} names no bucket (s3://bucket/prefix)")
    if parts.scheme == "file" and (parts.netloc or not parts.path.startswith("/")):
        raise ValueError(f"--staging {url!r} must be an absolute path: file:///path")
    return url.rstrip("/")


def open_store(url: str) -> ObjectStore:
    """The object store of a ``--staging`` URL. S3: endpoint, region and
    credentials from the usual ``AWS_*`` variables (plain HTTP allowed when
    ``AWS_ENDPOINT_URL`` is an ``http://`` URL)."""
    parts = urlsplit(check_staging_url(url))
    if parts.scheme == "file":
        root = Path(parts.path)
        root.mkdir(parents=True, exist_ok=True)
        return LocalStore(root, automatic_cleanup=True, mkdir=True)
    options: Any = dict(CLIENT_OPTIONS)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    if endpoint.startswith("http://"):
        options["allow_http"] = True
    prefix = parts.path.strip("/") or None
    return S3Store(parts.netloc, prefix=prefix, client_options=options, retry_config=RETRY_CONFIG)


def _file_key(sink: SinkKey, file_id: str) -> str:
    return "/".join((*sink.parts(), file_id))


def part_key(ref: SliceRef, node_id: str) -> str:
    """The object of one node's part of a slice."""
    return f"{_file_key(ref.sink, ref.file_id)}/{ref.slice_id}/{node_id}.csv.zst"


def index_key(ref: SliceRef, node_id: str) -> str:
    """The append index (receive times) of one node's part."""
    return f"{_file_key(ref.sink, ref.file_id)}/{ref.slice_id}/{node_id}.idx"


class SharedStaging:
    """Staging on an object store shared by every node of a cluster."""

    def __init__(self, url: str, store: ObjectStore | None = None) -> None:
        self.url = check_staging_url(url)
        self.store = store if store is not None else open_store(self.url)

    def put_part(self, ref: SliceRef, node_id: str, compressed: Path, index: bytes) -> int:
        """Uploads one node's compressed part and its index; returns the stored
        size of the part after reading it back."""
        size = compressed.stat().st_size
        key = part_key(ref, node_id)
        try:
            obstore.put(self.store, index_key(ref, node_id), index)
            # The index first: a part that is in the store always has its index.
            obstore.put(self.store, key, compressed, use_multipart=size > 64 << 20)
            stored = obstore.head(self.store, key)["size"]
        except Exception as exc:
            raise StagingError(f"staging {self.url}: upload of {key} failed: {_reason(exc)}") from exc
        if stored != size:
            raise StagingError(f"staging {self.url}: {key} reads back {stored} bytes, {size} were written")
        return size

    def get_part(self, ref: SliceRef, node_id: str, directory: Path) -> tuple[Path, bytes]:
        """Downloads one node's part into ``directory``; returns its path and its index."""
        key = part_key(ref, node_id)
        path = directory / f"{ref.slice_id}-{node_id}.csv.zst"
        try:
            index = obstore.get(self.store, index_key(ref, node_id)).bytes().to_bytes()
            result = obstore.get(self.store, key)
            with open(path, "wb") as out:
                for chunk in result:
                    out.write(chunk)
        except FileNotFoundError:
            raise StagingError(f"staging {self.url}: {key} is missing") from None
        except Exception as exc:
            raise StagingError(f"staging {self.url}: download of {key} failed: {_reason(exc)}") from exc
        return path, index

    def delete_file(self, sink: SinkKey, file_id: str) -> None:
        """Removes every object of a file (after it was imported)."""
        prefix = _file_key(sink, file_id) + "/"
        try:
            keys = [meta["path"] for batch in obstore.list(self.store, prefix) for meta in batch]
            if keys:
                obstore.delete(self.store, keys)
        except Exception as exc:
            raise StagingError(f"staging {self.url}: removing {prefix} failed: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    # obstore's messages carry the whole error chain over several lines; the first says what failed.
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


__all__ = ["SCHEMES", "SharedStaging", "StagingError", "check_staging_url", "index_key", "open_store", "part_key"]
