"""The staged rows in Arrow on their way into a table, for every target: the last
(or first) row of every key, in key order (:func:`dedup_order`, :func:`write_order`), gathered by a background
thread while the database writes (:func:`gather`), and the rows a database
refuses found by bisecting (:func:`write_bisecting`)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from pushstream.targets.base import RejectedRow, TableSpec

#: Keys up to this many bytes are sorted as fixed-width byte strings by numpy.
_FIXED_KEY_MAX = 64


def _fixed_width_keys(column: pa.ChunkedArray) -> np.ndarray | None:
    """The key column as a numpy array of fixed-width byte strings (shorter keys
    padded with NUL, which sorts first, so the order is the byte order), or
    ``None`` when that does not apply (long keys, NUL bytes in keys)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.type != pa.string() or array.null_count:
        return None
    n = len(array)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset : array.offset + n + 1]
    data_buffer = array.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(1, np.uint8)
    lengths = np.diff(offsets)
    width = int(lengths.max()) if n else 0
    if width == 0 or width > _FIXED_KEY_MAX:
        return None
    used = data[offsets[0] : offsets[-1]]
    if not used.all():  # a NUL byte: numpy ignores trailing NULs when comparing
        return None
    if (lengths == width).all():
        return used.view(f"S{width}")
    positions = offsets[:-1, None] + np.arange(width)
    padded = np.where(np.arange(width) < lengths[:, None], data[np.minimum(positions, len(data) - 1)], 0)
    return np.ascontiguousarray(padded, dtype=np.uint8).view(f"S{width}").ravel()


def dedup_order(table: pa.Table, key: Sequence[str], *, keep: str = "last") -> pa.Array:
    """The row indices that keep the last row (``keep="first"``: the first row)
    of every primary-key value, in key order.

    Key order is what makes the merge fast: the B-tree inserts and updates touch
    neighbouring pages instead of random ones (measured 3x faster than file order
    on a 1M-row SQLite table)."""
    n = table.num_rows
    if n < 2 or not key:
        return pa.array(np.arange(n, dtype=np.int64))
    fixed = _fixed_width_keys(table.column(key[0])) if len(key) == 1 else None
    if fixed is not None:
        # numpy's stable sort of fixed-width bytes: ~2x faster than Arrow's
        # variable-length string sort for UUID-like keys.
        order = np.argsort(fixed, kind="stable")
        sorted_keys = fixed[order]
        kept = np.empty(n, dtype=bool)
        if keep == "first":
            kept[1:] = sorted_keys[1:] != sorted_keys[:-1]
            kept[0] = True
        else:
            kept[:-1] = sorted_keys[1:] != sorted_keys[:-1]
            kept[-1] = True
        return pa.array(order[kept])
    # sort_indices is stable: equal keys stay in file order, so the last one of
    # each run of equal keys is the last occurrence in the file (the first one the first).
    indices = pc.sort_indices(table, sort_keys=[(name, "ascending") for name in key])
    differs = None
    for name in key:
        sorted_key = table.column(name).take(indices).combine_chunks()
        step = pc.not_equal(sorted_key.slice(0, n - 1), sorted_key.slice(1))
        differs = step if differs is None else pc.or_(differs, step)
    if keep == "first":
        return indices.filter(pa.concat_arrays([pa.array([True]), differs]))
    return indices.filter(pa.concat_arrays([differs, pa.array([True])]))


def import_positions(order: pa.Array) -> pa.Array:
    """For rows taken at ``order`` (indices into the import), each row's position
    among them in import order: 0 for the row that came first, and so on."""
    indices = np.asarray(order.to_numpy(zero_copy_only=False), dtype=np.int64)
    positions = np.empty(len(indices), dtype=np.int64)
    positions[np.argsort(indices, kind="stable")] = np.arange(len(indices), dtype=np.int64)
    return pa.array(positions)


def write_order(data: pa.Table, spec: TableSpec) -> pa.Array:
    """The indices in ``data`` of the rows an import writes: the last row of each
    key (the first with ``ledger``) in key order, or every row in import order."""
    if spec.primary_key:
        return dedup_order(data, spec.primary_key, keep="first" if spec.merge_strategy == "ledger" else "last")
    return pa.array(np.arange(data.num_rows, dtype=np.int64))


def rows_to_write(data: pa.Table, order: pa.Array, spec: TableSpec, position: str) -> pa.Table:
    """The rows at ``order``; with system columns they carry their position in
    import order in the column ``position``, which numbers them."""
    rows = data.take(order).combine_chunks()
    if spec.system_columns:
        rows = rows.append_column(position, import_positions(order))
    return rows


def dedup_last(table: pa.Table, key: Sequence[str]) -> pa.Table:
    """The last row of every primary-key value, ordered by the key."""
    return table.combine_chunks().take(dedup_order(table, key))


def gather(
    table: pa.Table,
    indices: pa.Array,
    batch_rows: int = 1 << 16,
    convert: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
    schema: pa.Schema | None = None,
) -> pa.RecordBatchReader:
    """The rows of ``table`` at ``indices`` as a stream of batches, gathered by a
    background thread a few batches ahead of the consumer, so gathering (a
    random-access copy of every row) overlaps with the database writing the
    previous batches instead of preceding it. ``convert`` (typed columns, see
    :class:`~pushstream.targets.staging_csv.Conversion`) runs on each batch in
    that thread too; ``schema`` is then the schema of its batches."""
    table = table.combine_chunks()
    ready: queue.Queue[pa.RecordBatch | BaseException | None] = queue.Queue(maxsize=4)
    stopped = threading.Event()

    def put(item: pa.RecordBatch | BaseException | None) -> bool:
        while not stopped.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for start in range(0, len(indices), batch_rows):
                for batch in table.take(indices.slice(start, batch_rows)).to_batches():
                    if not put(convert(batch) if convert is not None else batch):
                        return
            put(None)
        except BaseException as exc:
            put(exc)

    def consume() -> Iterator[pa.RecordBatch]:
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stopped.set()

    threading.Thread(target=produce, name="gather", daemon=True).start()
    return pa.RecordBatchReader.from_batches(schema if convert is not None else table.schema, consume())


def write_bisecting(
    rows: pa.Table, attempt: Callable[[pa.Table], str | None], reason: str, values: int | None = None
) -> list[RejectedRow]:
    """Writes ``rows``, which failed as a whole with ``reason``, in parts:
    ``attempt(part)`` writes a part and returns ``None``, or undoes the part
    (a savepoint) and returns the database's reason when a row of it was refused.
    A refused part is split in halves until the refused rows stand alone, so k
    bad rows among n cost about 2·k·log2(n/k) attempts, not n. The rows written
    keep their order; returns the refused ones with their reasons (the first
    ``values`` columns of each, all by default: columns added for the write, such
    as the import position, are not part of the row)."""
    refused: list[RejectedRow] = []
    n = rows.num_rows
    parts = [(0, n, reason)] if n == 1 else [(n // 2, n - n // 2, ""), (0, n // 2, "")]
    while parts:
        start, length, known = parts.pop()
        if length == 0:
            continue
        failure = known or attempt(rows.slice(start, length))
        if failure is None:
            continue
        if length == 1:
            row = list(rows.slice(start, 1).to_pylist()[0].values())[:values]
            refused.append(RejectedRow(tuple("" if v is None else str(v) for v in row), failure))
            continue
        half = length // 2
        parts.append((start + half, length - half, ""))
        parts.append((start, half, ""))
    return refused
