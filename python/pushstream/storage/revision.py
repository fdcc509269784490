"""A cheap cross-process signal that configuration or storage routing changed.

``<data dir>/revision`` holds two little-endian u64: the config revision and the
storage revision *that the latest change will have once committed*. Writers
announce the new values while they still hold the database's write lock, before
the commit; readers compare them (one memory read through ``mmap``) with the
revisions they last loaded from the database.

A reader that loads while the commit is not visible yet reads the old revision
from the database, still sees the announced one is higher, and loads again on its
next use. So once a change is committed (and its task reports success), every
reader routes by it: read-your-writes without a database query per request.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from pathlib import Path

_FORMAT = "<QQ"
_SIZE = struct.calcsize(_FORMAT)


class RevisionFile:
    """The announced (config, storage) revisions of one data dir."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)

    def read(self) -> tuple[int, int]:
        """The announced (config revision, storage revision)."""
        config, storage = struct.unpack_from(_FORMAT, self._map, 0)
        return config, storage

    def announce(self, *, config: int | None = None, storage: int | None = None) -> None:
        """Raises the announced revisions (never lowers them). Call while holding
        the database write lock of the change, before committing it."""
        current_config, current_storage = self.read()
        struct.pack_into(
            _FORMAT,
            self._map,
            0,
            max(current_config, config or 0),
            max(current_storage, storage or 0),
        )

    def close(self) -> None:
        self._map.close()


_FILES: dict[Path, RevisionFile] = {}
_FILES_LOCK = threading.Lock()

#: The name of the revision file in the data dir.
FILE_NAME = "revision"


def revision_file(data_dir: str | os.PathLike[str]) -> RevisionFile:
    """The revision file of a data dir (one shared instance per process)."""
    path = Path(data_dir) / FILE_NAME
    with _FILES_LOCK:
        found = _FILES.get(path)
        if found is None:
            found = _FILES[path] = RevisionFile(path)
        return found
