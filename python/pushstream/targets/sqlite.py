"""SQLite, the embedded default target (``tables.sqlite`` in the data dir), through ADBC.

Table naming: the whole table id is one quoted identifier, ``"in.c-bucket.table"``,
so the bucket is a name prefix, the mapping is reversible and ``sqlite3
tables.sqlite 'SELECT * FROM "in.c-bucket.table"'`` finds it. SQLite compares
identifiers case-insensitively, so ``in.c-B.t`` and ``in.c-b.t`` are one table.

Imports (one transaction each, ``BEGIN IMMEDIATE``):

- the import id is checked in the bookkeeping table ``_pushstream_imports`` and
  recorded in the same transaction as the rows, so a repeated import writes
  nothing, with or without a key;
- the table's shape is checked inside the transaction (an ALTER needs the same
  write lock, so nothing can change it between the check and the write);
- without a key the CSV is parsed as a stream of Arrow batches that ADBC
  bulk-ingests (``adbc_ingest``, append) straight into the table while the next
  batches are parsed; a temporary table would copy every row a second time for
  nothing, since ROLLBACK already undoes a partial ingest;
- with a key the rows are read and deduplicated in Arrow before the write lock is
  taken (last occurrence wins, sorted by the key), then bound as one Arrow table
  to ``INSERT ... ON CONFLICT (key) DO UPDATE`` (one prepared statement stepped
  by the driver in C). On 1M rows against a 1M-row table this measured about
  twice as fast as ingesting into a temporary table and deduplicating with
  ``GROUP BY`` in SQL, and key order makes the B-tree work about 3x cheaper than
  file order. An updated row keeps its rowid (its first position in ``tail``).

Typed tables (docs/tables.md): a column's data type is its declared type
(:data:`DECLARED_TYPES`: ``INTEGER``, ``REAL``, ``BOOLEAN`` holding 0/1,
``TIMESTAMP``/``DATE``/``JSON_TEXT`` holding the canonical text; ``JSON_TEXT``
rather than ``JSON``, whose NUMERIC affinity would turn ``1e300`` into a float),
checked against the sink's on every import. The merge strategies ``ledger``
(``ON CONFLICT DO NOTHING``) and ``snapshot`` (a ``DELETE`` of what the import
does not have), and system columns (numbered from ``_pushstream_offsets``), run
in the import's transaction; ``snapshot`` with a key and system columns stage the
rows in a temporary table first.

Storage: 64 KiB pages (bulk appends measured ~25 % faster than with 4 KiB),
``synchronous=FULL`` (a committed import survives power loss: the staging file
is deleted after it).

Concurrency: WAL mode (readers never block the writer), a busy timeout for
writers, and one connection per thread (ADBC connections are not thread-safe),
so the API can check tables while the coordinator imports.

Never open the same file with Python's ``sqlite3`` module in a process that uses
this target: that is a second copy of the SQLite library, and closing its file
descriptor drops the POSIX locks of ADBC's copy (SQLite's "How To Corrupt",
section 2.2.1). Other processes are fine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import adbc_driver_manager
import adbc_driver_sqlite.dbapi as sqlite_dbapi
import pyarrow as pa  # type: ignore[import-untyped]

from pushstream.targets import sql
from pushstream.targets.base import (
    ImportRequest,
    ImportResult,
    SinkIdentity,
    TableSpec,
    TargetError,
    TargetMissingError,
    TargetUnavailableError,
    parse_table_id,
)
from pushstream.targets.rows import gather, rows_to_write, write_bisecting, write_order
from pushstream.targets.sql import POSITION, literal, quote_ident
from pushstream.targets.staging_csv import Conversion, StagingStream, read_staging
from pushstream.targets.tailing import TailRows, display_order, no_event_time, typed_value

_IMPORTS = "_pushstream_imports"
#: Event-time column of each table (what ``tail --order event-time`` orders by).
_TABLES = "_pushstream_tables"
#: The next ``_offset`` of each table with system columns (never reused).
_OFFSETS = "_pushstream_offsets"
#: The temporary table rows are staged in when the merge needs SQL.
_STAGE = "_pushstream_stage"
#: The declared SQLite type of each data type.
DECLARED_TYPES = {
    "string": "TEXT",
    "integer": "INTEGER",
    "number": "REAL",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "json": "JSON_TEXT",
}
_DATA_TYPES = {declared: data_type for data_type, declared in DECLARED_TYPES.items()}
#: Data types SQLite stores as their canonical text.
TEXT_TYPES = ("timestamp", "date", "json")
#: How long a writer waits for the write lock (another import, a table being
#: created) before the import fails and is retried later.
BUSY_TIMEOUT_MS = 60_000
#: Page cache per connection; big enough for the hot part of a large keyed table.
CACHE_KIB = 256 * 1024
#: Bytes the WAL file is truncated to after a checkpoint rewinds it.
WAL_SIZE_LIMIT = 64 << 20
#: Page size of a new database file.
PAGE_SIZE = 65536


def _streamed(spec: TableSpec) -> bool:
    """Whether the import's rows go straight from the files into the table (no
    key, no system columns): parsed while the database writes."""
    return not spec.primary_key and not spec.system_columns


def _db_error(exc: Exception, what: str) -> TargetError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered or "unable to open" in lowered:
        return TargetUnavailableError(f"{what}: {message}")
    return TargetError(f"{what}: {message}")


#: What SQLite says when a row, not the import, is the problem: a constraint of
#: a table made by hand (CHECK, NOT NULL, UNIQUE, a trigger's RAISE), a value too big.
_ROW_ERRORS = ("constraint failed", "datatype mismatch", "too big", "raise(")


def _is_row_error(exc: BaseException) -> bool:
    return isinstance(exc, adbc_driver_manager.IntegrityError) or any(
        phrase in str(exc).lower() for phrase in _ROW_ERRORS
    )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.split("failed to execute: ", 1)[-1].split("failed to execute query: ", 1)[-1]


def _use_wal(cur: Any, timeout: float = 30.0) -> None:
    """Puts the database into WAL mode. WAL is a property of the file: set once,
    every later connection uses it, so this only reads the mode once it is set.
    Processes that open a database at the same moment (server workers, the
    coordinator) can get "locked" at once here, without the busy handler
    (switching modes, or the WAL index being recovered): retried until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cur.execute("PRAGMA journal_mode")
            if str(cur.fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
                cur.fetchall()
            return
        except adbc_driver_manager.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


class SqliteTarget:
    """A SQLite database file as the target (see the module docstring).

    The file is created when missing, unless ``create`` is false (a reader):
    then a missing file raises :class:`TargetMissingError`."""

    kind = "sqlite"

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise TargetMissingError(f"no target database at {self.path}")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._cursor() as cur:
            # Only takes effect while the file is still empty (a new database).
            cur.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            _use_wal(cur)
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {_IMPORTS} ("
                "import_id TEXT PRIMARY KEY, table_id TEXT NOT NULL, row_count INTEGER NOT NULL,"
                " imported_at TEXT NOT NULL)"
            )
            # Table ids ignore case like SQLite's table names.
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLES} (table_id TEXT COLLATE NOCASE PRIMARY KEY,"
                " event_time_column TEXT)"
            )
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {_OFFSETS} (table_id TEXT COLLATE NOCASE PRIMARY KEY,"
                " next_offset INTEGER NOT NULL)"
            )
        self._checkpoint_wanted = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True)
        self._checkpointer.start()

    # -- connections -------------------------------------------------------

    def _connection(self) -> Any:
        if self._closed:
            raise TargetError("the SQLite target is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                # autocommit: transactions are begun explicitly with BEGIN IMMEDIATE,
                # which the driver's implicit (deferred) BEGIN cannot express.
                conn = sqlite_dbapi.connect(str(self.path), autocommit=True)
                with conn.cursor() as cur:
                    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                    # FULL: a committed import survives power loss; it costs one
                    # fsync per import, and the staging file is deleted after it.
                    cur.execute("PRAGMA synchronous = FULL")
                    cur.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                    # Checkpoints run in the background thread (see _checkpoint_loop);
                    # the WAL file shrinks back to this size when it is rewound.
                    cur.execute("PRAGMA wal_autocheckpoint = 0")
                    cur.fetchall()
                    cur.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
                    cur.fetchall()
            except adbc_driver_manager.Error as exc:
                raise _db_error(exc, f'cannot open "{self.path}"') from exc
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._connection().cursor() as cur:
            yield cur

    @contextmanager
    def _write_transaction(self) -> Iterator[Any]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``; rolls back on any error."""
        with self._cursor() as cur:
            try:
                cur.execute("BEGIN IMMEDIATE")
            except adbc_driver_manager.Error as exc:
                raise _db_error(exc, f'cannot start a transaction on "{self.path}"') from exc
            try:
                yield cur
                cur.execute("COMMIT")
                self._checkpoint_wanted.set()
            except BaseException:
                with suppress(adbc_driver_manager.Error):
                    cur.execute("ROLLBACK")
                raise

    # -- table shape -------------------------------------------------------

    @staticmethod
    def table_name(table_id: str) -> str:
        """The SQLite table of a table id: the id itself (validated)."""
        parse_table_id(table_id)
        return table_id

    def _shape(self, cur: Any, table_id: str) -> tuple[list[str], list[str], list[str]] | None:
        """(columns, primary key in key order, data type of each column) of the
        table, or ``None`` if missing. A declared type pushstream does not make
        is given as it is declared (lower case)."""
        cur.execute(
            "SELECT name, pk, type FROM pragma_table_info(?) ORDER BY cid", parameters=(self.table_name(table_id),)
        )
        rows = cur.fetchall()
        if not rows:
            return None
        columns = [str(name) for name, _, _ in rows]
        key = [str(name) for name, pk, _ in sorted((r for r in rows if r[1]), key=lambda r: int(r[1]))]
        types = [_DATA_TYPES.get(str(t).upper(), str(t).lower()) for _, _, t in rows]
        return columns, key, types

    def _create_sql(self, spec: TableSpec) -> str:
        # Key columns are NOT NULL (SQLite would otherwise allow NULL keys); no
        # staged key is ever NULL, but other writers of the table may leave gaps.
        def definition(column: str) -> str:
            declared = DECLARED_TYPES[spec.column_type(column)]
            return f"{declared} NOT NULL" if spec.not_null(column) else declared

        return sql.create_table(quote_ident(self.table_name(spec.table_id)), spec, definition)

    def _validate(self, spec: TableSpec) -> None:
        self.table_name(spec.table_id)
        spec.validate()
        folded = [c.casefold() for c in spec.table_columns]
        if len(set(folded)) != len(folded):
            raise TargetError(
                f'table "{spec.table_id}": SQLite column names ignore case, so columns {list(spec.columns)} collide'
            )

    def _event_time_column(self, cur: Any, table_id: str) -> str | None:
        cur.execute(f"SELECT event_time_column FROM {_TABLES} WHERE table_id = ?", parameters=(table_id,))
        rows = cur.fetchall()
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def _ensure_in_transaction(self, cur: Any, spec: TableSpec) -> None:
        shape = self._shape(cur, spec.table_id)
        if shape is None:
            cur.execute(self._create_sql(spec))
        else:
            spec.check_matches(*shape)
        if spec.event_time_column is not None and self._event_time_column(cur, spec.table_id) != spec.event_time_column:
            cur.execute(
                f"INSERT INTO {_TABLES} (table_id, event_time_column) VALUES (?, ?)"
                " ON CONFLICT (table_id) DO UPDATE SET event_time_column = excluded.event_time_column",
                parameters=(spec.table_id, spec.event_time_column),
            )

    def ensure_table(self, spec: TableSpec) -> None:
        """Creates the table (native column types, primary key) or checks it exactly."""
        self._validate(spec)
        try:
            with self._cursor() as cur:
                # The common case (the table exists) only reads: no write lock.
                shape = self._shape(cur, spec.table_id)
                if shape is not None:
                    spec.check_matches(*shape)
                    if spec.event_time_column in (None, self._event_time_column(cur, spec.table_id)):
                        return
            with self._write_transaction() as cur:
                self._ensure_in_transaction(cur, spec)
        except adbc_driver_manager.Error as exc:
            raise _db_error(exc, f'cannot create table "{spec.table_id}"') from exc

    def table_exists(self, table_id: str) -> bool:
        try:
            with self._cursor() as cur:
                return self._shape(cur, table_id) is not None
        except adbc_driver_manager.Error as exc:
            raise _db_error(exc, f'cannot inspect table "{table_id}"') from exc

    def table_ids(self) -> list[str]:
        try:
            with self._cursor() as cur:
                cur.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                names = [str(row[0]) for row in cur.fetchall()]
        except adbc_driver_manager.Error as exc:
            raise _db_error(exc, "cannot list the tables") from exc
        return [name for name in names if _is_table_id(name)]

    # -- imports -----------------------------------------------------------

    def _already_imported(self, cur: Any, import_id: str) -> bool:
        cur.execute(f"SELECT 1 FROM {_IMPORTS} WHERE import_id = ?", parameters=(import_id,))
        return bool(cur.fetchall())

    def import_files(self, request: ImportRequest) -> ImportResult:
        """Imports the staging files in one transaction (see the module docstring)."""
        spec = request.spec
        self._validate(spec)
        table_name = self.table_name(spec.table_id)
        conversion = Conversion(spec.columns, spec.column_types, TEXT_TYPES, event_time=spec.event_time_column)
        stream: StagingStream | None = None
        try:
            # Cheap early exit for a retried import: no need to parse the files.
            with self._cursor() as cur:
                if self._already_imported(cur, request.import_id):
                    return ImportResult(rows_read=0, already_imported=True)
            data: pa.Table | None = None
            if not _streamed(spec):
                # Parsed and deduplicated before the write lock is taken.
                data = read_staging(request.paths, spec.columns)
                rows_read = data.num_rows
                order = write_order(data, spec)
            with self._write_transaction() as cur:
                if self._already_imported(cur, request.import_id):
                    # Imported by someone else since the first check; nothing was written.
                    return ImportResult(rows_read=0, already_imported=True)
                self._ensure_in_transaction(cur, spec)
                if data is None:
                    # No key: parsing overlaps with the ingest (the stream is read by it).
                    if spec.merge_strategy == "snapshot":
                        cur.execute(sql.prune_snapshot(quote_ident(table_name), spec, ""))
                    stream = StagingStream(request.paths, spec.columns)
                    cur.adbc_ingest(table_name, conversion.reader(stream.reader()), mode="append")
                    rows_read = stream.rows
                elif len(order):
                    if spec.system_columns or spec.merge_strategy == "snapshot":
                        rows = rows_to_write(data, order, spec, POSITION)
                        self._prune(cur, spec, rows, conversion)
                        self._merge_staged(cur, spec, rows, conversion, prune=True)
                    else:
                        self._upsert(cur, spec, gather(data, order, convert=conversion.batch, schema=conversion.schema))
                self._record_import(cur, request, rows_read)
        except TargetError:
            raise
        except adbc_driver_manager.Error as exc:
            if stream is not None and stream.error is not None:
                raise stream.error from exc
            if conversion.error is not None:
                raise conversion.error from exc
            if request.reject is not None and _is_row_error(exc):
                return self._import_rejecting(request, _reason(exc))
            raise _db_error(exc, f'import "{request.import_id}" into "{spec.table_id}" failed') from exc
        return ImportResult(rows_read=rows_read, event_range=conversion.event_range)

    def _import_rejecting(self, request: ImportRequest, reason: str) -> ImportResult:
        """The import again, after the database refused some of its rows: the
        rows are written in savepoint-guarded parts (see :func:`write_bisecting`),
        the refused ones handed to ``request.reject`` before the commit."""
        spec = request.spec
        assert request.reject is not None
        conversion = Conversion(spec.columns, spec.column_types, TEXT_TYPES, event_time=spec.event_time_column)
        data = read_staging(request.paths, spec.columns)
        rows = rows_to_write(data, write_order(data, spec), spec, POSITION)

        def attempt(cur: Any, part: pa.Table) -> str | None:
            cur.execute("SAVEPOINT pushstream_part")
            written_range = conversion.event_range
            try:
                self._write_part(cur, spec, part, conversion)
            except adbc_driver_manager.Error as exc:
                if not _is_row_error(exc):
                    raise
                cur.execute("ROLLBACK TO pushstream_part")
                cur.execute("RELEASE pushstream_part")
                # The part's event times count only once its rows are written.
                conversion.event_range = written_range
                return _reason(exc)
            cur.execute("RELEASE pushstream_part")
            return None

        try:
            with self._write_transaction() as cur:
                if self._already_imported(cur, request.import_id):
                    return ImportResult(rows_read=0, already_imported=True)
                self._ensure_in_transaction(cur, spec)
                if spec.merge_strategy == "snapshot":
                    # What the whole import does not have goes first; the parts are written after.
                    self._prune(cur, spec, rows, conversion, always=True)
                    # Staging every row for the prune is no write: refused rows must not count.
                    conversion.event_range = None
                refused = write_bisecting(rows, lambda part: attempt(cur, part), reason, len(spec.columns))
                if refused:
                    request.reject(refused)
                self._record_import(cur, request, data.num_rows)
        except TargetError:
            raise
        except adbc_driver_manager.Error as exc:
            raise _db_error(exc, f'import "{request.import_id}" into "{spec.table_id}" failed') from exc
        return ImportResult(rows_read=data.num_rows, rejected=len(refused), event_range=conversion.event_range)

    def _write_part(self, cur: Any, spec: TableSpec, part: pa.Table, conversion: Conversion) -> None:
        """Writes some of the import's rows (already pruned for a snapshot)."""
        if spec.system_columns or (spec.primary_key and spec.merge_strategy == "snapshot"):
            self._merge_staged(cur, spec, part, conversion)
        elif spec.primary_key:
            converted = conversion.table(part)
            self._upsert(cur, spec, pa.RecordBatchReader.from_batches(converted.schema, converted.to_batches()))
        else:
            cur.adbc_ingest(self.table_name(spec.table_id), conversion.table(part), mode="append")

    def _stage(self, cur: Any, rows: pa.Table, conversion: Conversion) -> str:
        """Rows into the temporary staging table (made anew); its quoted name."""
        cur.execute(f"DROP TABLE IF EXISTS temp.{quote_ident(_STAGE)}")
        cur.adbc_ingest(_STAGE, conversion.table(rows), mode="create", temporary=True)
        return f"temp.{quote_ident(_STAGE)}"

    def _prune(
        self, cur: Any, spec: TableSpec, rows: pa.Table, conversion: Conversion, *, always: bool = False
    ) -> None:
        """A snapshot import deletes what it does not have (before its rows are
        written). With a key and system columns, the rows are staged for the merge
        anyway, which then deletes; ``always`` deletes here all the same."""
        if spec.merge_strategy != "snapshot":
            return
        table = quote_ident(self.table_name(spec.table_id))
        if not spec.primary_key:
            cur.execute(sql.prune_snapshot(table, spec, ""))
        elif always:
            cur.execute(sql.prune_snapshot(table, spec, self._stage(cur, rows, conversion)))

    def _merge_staged(
        self, cur: Any, spec: TableSpec, rows: pa.Table, conversion: Conversion, *, prune: bool = False
    ) -> None:
        """The rows through the staging table: a snapshot's prune (with a key,
        when ``prune``: the rows are the whole import), then the strategy's
        ``INSERT ... SELECT``, numbering system columns."""
        table = quote_ident(self.table_name(spec.table_id))
        staged = self._stage(cur, rows, conversion)
        if prune and spec.merge_strategy == "snapshot" and spec.primary_key:
            cur.execute(sql.prune_snapshot(table, spec, staged))
        if not spec.system_columns:
            cur.execute(sql.merge(table, spec, staged))
        else:
            first = self._next_offset(cur, spec.table_id)
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            cur.execute(sql.merge(table, spec, staged, first_offset=first, system_time=literal(now)))
            cur.execute("SELECT changes()")
            written = int(cur.fetchone()[0])
            cur.execute(
                f"INSERT INTO {_OFFSETS} (table_id, next_offset) VALUES (?, ?)"
                " ON CONFLICT (table_id) DO UPDATE SET next_offset = excluded.next_offset",
                parameters=(spec.table_id, first + written),
            )
        cur.execute(f"DROP TABLE {staged}")

    def _next_offset(self, cur: Any, table_id: str) -> int:
        cur.execute(f"SELECT next_offset FROM {_OFFSETS} WHERE table_id = ?", parameters=(table_id,))
        found = cur.fetchall()
        return int(found[0][0]) if found else 0

    @staticmethod
    def _record_import(cur: Any, request: ImportRequest, rows_read: int) -> None:
        """Records the import id, in the import's transaction."""
        cur.execute(
            f"INSERT INTO {_IMPORTS} (import_id, table_id, row_count, imported_at) VALUES (?, ?, ?, ?)",
            parameters=(
                request.import_id,
                request.spec.table_id,
                rows_read,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            ),
        )

    def _upsert(self, cur: Any, spec: TableSpec, rows: pa.RecordBatchReader) -> None:
        name = quote_ident(self.table_name(spec.table_id))
        params = ", ".join("?" for _ in spec.columns)
        # One prepared statement, stepped by the driver for every row of the bound
        # Arrow stream (no Python per row).
        cur.executemany(sql.upsert(name, spec, f"VALUES ({params})"), rows)

    # -- reading -----------------------------------------------------------

    def tail(
        self, table_id: str, limit: int = 10, skip: int = 0, *, system: bool = False, order: str = "import"
    ) -> TailRows:
        """The last ``limit`` rows, skipping the ``skip`` newest, oldest first:
        by rowid (import order; an upserted row keeps its first position), or by
        the event-time column (``order="event-time"``). Typed columns give typed
        values; ``system`` shows the system columns first (see
        :func:`~pushstream.targets.tailing.display_order`)."""
        if limit < 0 or skip < 0:
            raise ValueError("limit and skip must not be negative")
        name = quote_ident(self.table_name(table_id))
        try:
            with self._cursor() as cur:
                shape = self._shape(cur, table_id)
                if shape is None:
                    raise TargetError(f'table "{table_id}" does not exist')
                all_columns, key, types = shape
                event_time = self._event_time_column(cur, table_id)
                if event_time not in all_columns:
                    event_time = None
                columns = display_order(table_id, all_columns, event_time, system=system)
                if order == "event-time":
                    if event_time is None:
                        raise no_event_time(table_id)
                    # Equal event times: newest import first.
                    tie = ", rowid DESC" if self._has_rowid(cur, table_id) else ""
                    order_by = f"{quote_ident(event_time)} DESC{tie}"
                else:
                    # A table created WITHOUT ROWID by hand has no import order: newest key first.
                    order_by = ("rowid" if self._has_rowid(cur, table_id) else sql.column_list(key)) + " DESC"
                cur.execute(
                    f"SELECT {sql.column_list(columns)} FROM {name} ORDER BY {order_by} LIMIT ? OFFSET ?",
                    parameters=(limit, skip),
                )
                column_types = [types[all_columns.index(c)] for c in columns]
                rows = [
                    tuple(typed_value(v, t) for v, t in zip(row, column_types, strict=True)) for row in cur.fetchall()
                ]
        except adbc_driver_manager.Error as exc:
            raise _db_error(exc, f'cannot read table "{table_id}"') from exc
        rows.reverse()
        return columns, rows

    def _has_rowid(self, cur: Any, table_id: str) -> bool:
        cur.execute("SELECT wr FROM pragma_table_list(?)", parameters=(self.table_name(table_id),))
        rows = cur.fetchall()
        return not rows or not rows[0][0]

    # -- sinks (nothing to do: SQLite has no users) ------------------------

    def prepare_sink(self, sink: SinkIdentity, spec: TableSpec) -> None:
        """No credentials in SQLite: only checks the table."""
        self.ensure_table(spec)

    def rotate_sink_credentials(self, sink: SinkIdentity) -> None:
        """Nothing to rotate in SQLite."""

    def drop_sink(self, sink: SinkIdentity) -> None:
        """Nothing to drop in SQLite."""

    # -- checkpoints -------------------------------------------------------

    def _checkpoint_loop(self) -> None:
        """Copies committed WAL frames into the database file after imports, off
        the import's path: an import's COMMIT only appends and syncs the WAL (its
        rows are durable then), instead of also running a checkpoint of the whole
        import inline as SQLite's auto-checkpoint would."""
        while True:
            self._checkpoint_wanted.wait()
            self._checkpoint_wanted.clear()
            if self._closed:
                return
            # PASSIVE never waits for (nor blocks) readers or the next import.
            with suppress(Exception), self._cursor() as cur:
                cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cur.fetchall()

    def close(self) -> None:
        """Closes every connection of every thread."""
        with self._lock:
            self._closed = True
            self._checkpoint_wanted.set()
            connections, self._connections = self._connections, []
        if self._checkpointer is not threading.current_thread():
            self._checkpointer.join(timeout=60)
        for conn in connections:
            with suppress(Exception):
                conn.close()


def _is_table_id(name: str) -> bool:
    try:
        parse_table_id(name)
    except ValueError:
        return False
    return True
