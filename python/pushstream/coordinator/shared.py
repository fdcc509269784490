"""The coordinator's steps with shared staging (``--staging s3://…`` or
``file:///…``, see :mod:`pushstream.storage.staging`).

Every node uploads its own parts: the rows its receiver processes wrote into a
slice lie on its own disk, so the coordinator process of each node compresses
and uploads those parts once their writers let go of them (:meth:`upload_parts`).
A slice is uploaded when every node that wrote to it has uploaded its part, and
a file is importable when all its slices are.

The importing node fetches a file's parts from the store (:meth:`fetch`); the
parts of one slice written by several nodes are put back into receive order
from their append indexes, so that a primary key's last write wins by receive
time whichever node received it.

Crash safety, as with local staging: a part is written to the store (and read
back) before the storage state records it, and the local part is removed only
after that commit; a crash in between uploads it again to the same key.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import zstandard

from pushstream.coordinator import upload as uploads
from pushstream.errors import IllegalTransitionError
from pushstream.storage.base import StorageState
from pushstream.storage.layout import Layout, SinkKey
from pushstream.storage.staging import SharedStaging
from pushstream.storage.state import FileRef, SliceRef

log = logging.getLogger(__name__)

#: Seconds a closing slice without any reported writer waits before it counts as empty.
UNWRITTEN_GRACE = 2.0


class SharedStagingSteps:
    """Upload of this node's parts and download of files to import, for one node.

    ``node_prefix`` starts the id of every receiver process of this node
    (``<node name>.``): the parts it reported are this node's to upload."""

    def __init__(self, storage: StorageState, layout: Layout, staging: SharedStaging, node_prefix: str) -> None:
        self.storage = storage
        self.layout = layout
        self.staging = staging
        self.node_prefix = node_prefix
        #: When an upload failure of a part was last logged (once a minute while it lasts).
        self._failures: dict[tuple[SliceRef, str], float] = {}
        #: When each closing slice without writers was first seen.
        self._unwritten: dict[SliceRef, float] = {}

    @property
    def work_dir(self) -> Path:
        """Where parts are compressed before the upload and fetched before an import."""
        return self.layout.data_dir / "transfer"

    def upload_parts(self) -> None:
        """Uploads the parts of this node's closing slices that their writers let go of."""
        closing = self.storage.closing_slices()
        if not closing:
            return
        live = self.storage.live_nodes()
        for ref in closing:
            local = uploads.node_parts(self.layout, ref)
            nodes = self.storage.slice_nodes(ref)
            if not nodes.open and not nodes.closed and not local:
                self._close_unwritten(ref)
                continue
            self._unwritten.pop(ref, None)
            mine = {n for n in nodes.open | nodes.closed if n.startswith(self.node_prefix)} | set(local)
            if not mine:
                continue
            done = set(self.storage.slice_parts(ref))
            for node_id in sorted(mine - done):
                if node_id in nodes.open and node_id in live:
                    continue  # still writing
                if not self._upload_part(ref, node_id, local.get(node_id)):
                    break
                done.add(node_id)
            for node_id in set(local) & done:
                _remove_part(local[node_id])
            if not uploads.node_parts(self.layout, ref):
                uploads.remove_local(self.layout, ref)

    def _close_unwritten(self, ref: SliceRef) -> None:
        """A slice no node reported writing to has no rows: it is uploaded as
        empty once the receivers had the time to report it (a receiver reports a
        slice before its first row, within :data:`UNWRITTEN_GRACE` of a rotation)."""
        first_seen = self._unwritten.setdefault(ref, time.monotonic())
        if time.monotonic() - first_seen < UNWRITTEN_GRACE:
            return
        try:
            with self.storage.atomic() as tx:
                if not (tx_nodes := self.storage.slice_nodes(ref)).open and not tx_nodes.closed:
                    tx.mark_uploaded(ref, 0, 0, 0)
        except IllegalTransitionError:
            pass  # another node did it first
        self._unwritten.pop(ref, None)

    def _upload_part(self, ref: SliceRef, node_id: str, path: Path | None) -> bool:
        records = uncompressed = compressed = 0
        if path is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            packed = self.work_dir / f"{ref.slice_id}-{node_id}.csv.zst"
            try:
                result = uploads.compress_part(path, packed)
                if result.truncated:
                    log.warning(
                        "slice %s/%s/%s: cut %d bytes of a torn row of %s",
                        ref.sink,
                        ref.file_id,
                        ref.slice_id,
                        result.truncated,
                        node_id,
                    )
                if result.records:
                    index = uploads.index_of(path)
                    compressed = self.staging.put_part(
                        ref, node_id, packed, index.read_bytes() if index.exists() else b""
                    )
                    records, uncompressed = result.records, result.uncompressed_size
            except Exception as exc:
                # One part that cannot be uploaded now (the store is away) holds up nothing else.
                key = (ref, node_id)
                if time.monotonic() - self._failures.get(key, -60.0) >= 60:
                    self._failures[key] = time.monotonic()
                    log.warning(
                        "slice %s/%s/%s: upload of part %s failed, retried: %s",
                        ref.sink,
                        ref.file_id,
                        ref.slice_id,
                        node_id,
                        exc,
                    )
                return False
            finally:
                packed.unlink(missing_ok=True)
            self._failures.pop((ref, node_id), None)
        with self.storage.atomic() as tx:
            tx.mark_part_uploaded(ref, node_id, records, uncompressed, compressed)
        return True

    def fetch(self, file: FileRef) -> tuple[Path, list[Path]]:
        """Downloads the parts of a file's slices with rows into a directory of
        its own; returns the directory (the caller removes it) and one path per
        slice, in slice order."""
        directory = self.work_dir / "import" / "-".join((*file.sink.parts(), file.file_id))
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        paths = []
        for slice_id in self.storage.uploaded_slices_with_rows(file):
            ref = SliceRef(file.sink, file.file_id, slice_id)
            nodes = [node for node, rows in self.storage.slice_parts(ref).items() if rows > 0]
            fetched = [self.staging.get_part(ref, node, directory) for node in nodes]
            if len(fetched) == 1:
                paths.append(fetched[0][0])
                continue
            # Several nodes wrote to the slice: their rows go back into receive order.
            plain = []
            for packed, index in fetched:
                csv = packed.with_suffix("")  # <slice>-<node>.csv
                with open(packed, "rb") as source, open(csv, "wb") as out:
                    zstandard.ZstdDecompressor().copy_stream(source, out)
                uploads.index_of(csv).write_bytes(index)
                packed.unlink()
                plain.append((csv, csv.stat().st_size))
            merged = directory / f"{slice_id}.csv"
            uploads.write_in_receive_order(plain, merged, compress=False)
            for csv, _ in plain:
                csv.unlink()
                uploads.index_of(csv).unlink(missing_ok=True)
            paths.append(merged)
        return directory, paths

    def remove_file(self, sink: SinkKey, file_id: str) -> None:
        """Removes a file's objects from the store (pruning after imports)."""
        self.staging.delete_file(sink, file_id)


def _remove_part(path: Path) -> None:
    path.unlink(missing_ok=True)
    uploads.index_of(path).unlink(missing_ok=True)
