"""The repository interface of the catalog.

The catalog holds branches, sources, sinks, their versions, tasks and API tokens,
and a monotonically increasing **config revision** that every committed change of
a source, a sink or settings increments. :class:`SqliteCatalog
<pushstream.catalog.sqlite.SqliteCatalog>` implements it on one SQLite file,
:class:`PgCatalog <pushstream.catalog.postgresql.PgCatalog>` on the PostgreSQL
control plane of a cluster (``serve --cluster``); another database only needs
another implementation of these two protocols.

Reads outside a transaction see the last committed state. Writes happen in
:meth:`Catalog.transaction`, which serialises writers (across threads and
processes), sees its own writes and commits or rolls back as a whole.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from pushstream.catalog.models import IngestSink, IngestSource, Role, Sink, Source, Task, Token, Version
from pushstream.storage.base import StorageTransaction

#: Most versions kept per source or sink; older ones are pruned.
MAX_VERSIONS = 1000


class Reader(Protocol):
    """Reads of configuration, available on the catalog and inside a transaction."""

    def revision(self) -> int:
        """The config revision: increases with every committed change of sources, sinks or settings."""
        ...

    def branch_exists(self, branch_id: int) -> bool: ...

    def default_branch_id(self) -> int | None: ...

    def get_source(self, branch_id: int, source_id: str, *, deleted: bool | None = False) -> Source | None:
        """A source; ``deleted=False`` only an active one, ``True`` only a deleted one, ``None`` either."""
        ...

    def page_sources(
        self, branch_id: int, *, deleted: bool = False, after_id: str = "", limit: int | None = None
    ) -> tuple[list[Source], int]:
        """Sources of a branch ordered by id, after ``after_id``; and the total count (ignoring the page)."""
        ...

    def count_sources(self, branch_id: int) -> int:
        """Active (not deleted) sources of a branch."""
        ...

    def get_sink(self, branch_id: int, source_id: str, sink_id: str, *, deleted: bool | None = False) -> Sink | None:
        """A sink; ``deleted`` as in :meth:`get_source`."""
        ...

    def page_sinks(
        self, branch_id: int, source_id: str, *, deleted: bool = False, after_id: str = "", limit: int | None = None
    ) -> tuple[list[Sink], int]: ...

    def count_sinks(self, branch_id: int, source_id: str) -> int:
        """Active (not deleted) sinks of a source."""
        ...

    def page_versions(
        self, branch_id: int, source_id: str, sink_id: str = "", *, after: int = 0, limit: int | None = None
    ) -> tuple[list[Version], int]:
        """Versions of a source (``sink_id=""``) or a sink, by number, after version ``after``;
        and how many versions there are after ``after`` (Keboola's ``totalCount`` of versions)."""
        ...

    def get_version(
        self, branch_id: int, source_id: str, sink_id: str, number: int
    ) -> tuple[Version, dict[str, Any]] | None:
        """A version and the state it recorded."""
        ...

    def has_processing_task(self, prefix: str) -> bool:
        """Whether a task whose id starts with ``prefix`` is still running (in a live process)."""
        ...

    def effective_settings(self, branch_id: int, source_id: str, sink_id: str | None = None) -> dict[str, Any]:
        """Settings in typed form (see :mod:`pushstream.catalog.settings`): defaults <
        operator config < source overrides < sink overrides."""
        ...


class Transaction(Reader, Protocol):
    """Writes; everything becomes visible to others at commit, or not at all."""

    def put_source(self, source: Source) -> None:
        """Inserts or replaces a source (the current state; versions are added separately)."""
        ...

    def put_sink(self, sink: Sink) -> None: ...

    def add_version(
        self, branch_id: int, source_id: str, sink_id: str, version: Version, state: dict[str, Any]
    ) -> None:
        """Records a version; prunes the oldest beyond :data:`MAX_VERSIONS`."""
        ...

    def purge_source(self, branch_id: int, source_id: str) -> None:
        """Hard-deletes a source with its sinks and all their versions."""
        ...

    def bump_revision(self) -> int:
        """Increments the config revision; returns the new value."""
        ...

    def create_task(self, task: Task) -> None:
        """Stores a new task (owned by this process)."""
        ...

    def finish_task(
        self, task_id: str, status: str, *, result: str | None = None, error: str | None = None
    ) -> Task | None: ...

    def storage(self) -> StorageTransaction:
        """The storage state (files and slices) inside this transaction: what the
        change hooks do to it commits or rolls back with the configuration change."""
        ...


class Catalog(Reader, Protocol):
    """The catalog: sources, sinks, tokens, settings and tasks, read and changed in transactions."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction (exclusive among writers): commits when the block
        ends normally, rolls back when it raises."""
        ...

    def ensure_branch(self, project_id: int, branch_id: int, *, default: bool = False) -> None:
        """Creates a branch if missing; ``default=True`` makes it the default branch."""
        ...

    # The data plane.

    def get_sources_for_ingest(self, project_id: int, source_id: str) -> list[IngestSource]:
        """Every source with this id in the project, one per branch (deleted ones included, see ``state``)."""
        ...

    def get_source_for_ingest(
        self, project_id: int, source_id: str, branch_id: int | None = None
    ) -> IngestSource | None:
        """The source in one branch (the default branch when ``branch_id`` is None)."""
        ...

    def list_sinks(self, branch_id: int, source_id: str, *, enabled_only: bool = True) -> list[IngestSink]:
        """The not deleted sinks of a source, ordered by id, with their effective settings."""
        ...

    # Tasks.

    def create_task(self, task: Task) -> None: ...

    def get_task(self, task_id: str) -> Task | None: ...

    def finish_task(
        self, task_id: str, status: str, *, result: str | None = None, error: str | None = None
    ) -> Task | None:
        """Finishes a task in its own transaction (when its change failed and was rolled back)."""
        ...

    def fail_orphaned_tasks(self) -> int:
        """Marks tasks as failed whose process died before they finished; returns how many."""
        ...

    def purge_tasks(self, older_than_seconds: float) -> int: ...

    # Tokens.

    def create_token(self, description: str, role: Role, user_id: str = "", user_name: str = "") -> tuple[Token, str]:
        """A new token and its secret (shown once; only its hash is stored)."""
        ...

    def authenticate(self, secret: str) -> Token | None: ...

    def list_tokens(self) -> list[Token]: ...

    def delete_token(self, token_id: str) -> bool: ...

    def close(self) -> None: ...


class Propagation(Protocol):
    """How a committed change reaches the receivers of every node of a cluster
    (on one node, the data dir's revision file reaches every process at once)."""

    def wait(self, revision: int) -> list[str]:
        """Waits (a bounded time) until every live node routes by config
        ``revision``; returns the nodes that did not follow in time."""
        ...
