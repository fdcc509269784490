"""Where data lives in the data dir, and the ids of files and slices.

```
<data dir>/
  state.sqlite                                    configuration + storage state
  local/<branch>/<source>/<sink>/<file>/<slice>/slice-<node>.csv    open slices (level "local")
  staging/<branch>/<source>/<sink>/<file>/<slice>.csv.zst          closed slices (level "staging")
  rejected/<branch>/<source>/<sink>/<file>.ndjson                  rows the target refused
  tables.sqlite                                   the default target
```

File and slice ids are the UTC time they were opened, ``20261122T042000.123456Z``:
sortable, unique per sink, safe in paths.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


def new_id(not_before: str | None = None) -> str:
    """A time-based id, strictly greater than ``not_before`` (when given)."""
    ns = time.time_ns()
    candidate = format_id(ns)
    while not_before is not None and candidate <= not_before:
        ns += 1000
        candidate = format_id(ns)
    return candidate


def format_id(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{ns // 1000 % 1_000_000:06d}Z"


@dataclass(frozen=True)
class SinkKey:
    """Identifies a sink across branches and sources."""

    branch_id: int
    source_id: str
    sink_id: str

    def parts(self) -> tuple[str, str, str]:
        return (str(self.branch_id), self.source_id, self.sink_id)

    def __str__(self) -> str:
        return f"{self.branch_id}/{self.source_id}/{self.sink_id}"


@dataclass(frozen=True)
class Layout:
    """Paths inside one data dir."""

    data_dir: Path

    @property
    def local_dir(self) -> Path:
        return self.data_dir / "local"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    @property
    def rejected_dir(self) -> Path:
        return self.data_dir / "rejected"

    def rejected_path(self, sink: SinkKey, file_id: str) -> Path:
        """The rows of one file that the target refused (see :mod:`pushstream.storage.rejected`)."""
        return self.rejected_dir.joinpath(*sink.parts(), f"{file_id}.ndjson")

    def slice_dir(self, sink: SinkKey, file_id: str, slice_id: str) -> Path:
        return self.local_dir.joinpath(*sink.parts(), file_id, slice_id)

    def slice_path(self, sink: SinkKey, file_id: str, slice_id: str, node_id: str) -> Path:
        """The CSV one node appends to for one slice."""
        return self.slice_dir(sink, file_id, slice_id) / f"slice-{node_id}.csv"

    def staging_path(self, sink: SinkKey, file_id: str, slice_id: str) -> Path:
        """The compressed slice (all nodes' parts concatenated) waiting for import."""
        return self.staging_dir.joinpath(*sink.parts(), file_id, f"{slice_id}.csv.zst")
