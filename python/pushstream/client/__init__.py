"""Client side of pushstream, behind the command line: :mod:`~pushstream.client.api`
(the Stream API), :mod:`~pushstream.client.inputs` (files and stdin of ``ingest``,
checked and translated to NDJSON), :mod:`~pushstream.client.sender` (batches to a
source's ingest URL), :mod:`~pushstream.client.render` (tables, CSV, JSON) and
:mod:`~pushstream.client.commands` (the click commands, one module per group).

Submodules are imported where they are used, so ``pushstream serve`` does not load
the client's dependencies.
"""
