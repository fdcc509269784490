"""Client side of pushstream: :class:`StreamClient` sends events from Python (the
public API, :mod:`~pushstream.client.stream`); behind it and the command line are
:mod:`~pushstream.client.api`
(the Stream API), :mod:`~pushstream.client.inputs` (files and stdin of ``ingest``,
checked and translated to NDJSON), :mod:`~pushstream.client.sender` (batches to a
source's ingest URL), :mod:`~pushstream.client.render` (tables, CSV, JSON) and
:mod:`~pushstream.client.commands` (the click commands, one module per group).

Submodules are imported where they are used, so ``pushstream serve`` does not load
the client's dependencies.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pushstream.client.sender import IngestResult
    from pushstream.client.stream import StreamClient

__all__ = ["IngestResult", "StreamClient"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the command line loads this package for every command.
    if name == "StreamClient":
        from pushstream.client.stream import StreamClient

        return StreamClient
    if name == "IngestResult":
        from pushstream.client.sender import IngestResult

        return IngestResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
