"""Behaviour every target shares, run against SQLite and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zstandard
from targethelpers import Staging, encode_rows

from pushstream.targets import open_target
from pushstream.targets.base import (
    ImportRequest,
    SinkIdentity,
    TableMismatchError,
    TableSpec,
    TargetError,
    TargetMissingError,
    parse_table_id,
)
from pushstream.targets.postgresql import PostgresTarget
from pushstream.targets.sqlite import SqliteTarget
from rawsql import Raw

PLAIN = TableSpec("in.c-bucket.events", ("id", "at", "body"))
KEYED = TableSpec("in.c-bucket.users", ("id", "name", "email"), ("id",))


def rows_of(target: Any, table_id: str, limit: int = 1_000_000) -> list[tuple[str | None, ...]]:
    return target.tail(table_id, limit=limit)[1]


# -- tables -------------------------------------------------------------------


def test_table_ids_lists_the_tables(target: Any) -> None:
    assert target.table_ids() == []
    target.ensure_table(PLAIN)
    target.ensure_table(KEYED)
    # The bookkeeping tables of the target are not table ids.
    assert target.table_ids() == ["in.c-bucket.events", "in.c-bucket.users"]


def test_ensure_table_creates_a_missing_table(target: Any) -> None:
    assert not target.table_exists(PLAIN.table_id)
    target.ensure_table(PLAIN)
    assert target.table_exists(PLAIN.table_id)
    assert target.tail(PLAIN.table_id) == (["id", "at", "body"], [])
    target.ensure_table(PLAIN)  # idempotent


def test_ensure_table_creates_the_primary_key(target: Any, raw: Raw) -> None:
    target.ensure_table(KEYED)
    raw.sql(f"INSERT INTO {raw.name(KEYED.table_id)} VALUES ('1', 'a', 'x')")
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        raw.sql(f"INSERT INTO {raw.name(KEYED.table_id)} VALUES ('1', 'b', 'y')")


def test_table_in_another_bucket_is_another_table(target: Any) -> None:
    target.ensure_table(PLAIN)
    other = TableSpec("in.c-other.events", ("x",))
    target.ensure_table(other)
    assert target.tail("in.c-other.events")[0] == ["x"]
    assert target.tail(PLAIN.table_id)[0] == ["id", "at", "body"]


def test_mismatch_missing_column(target: Any) -> None:
    target.ensure_table(TableSpec("in.c-b.t", ("a", "b")))
    with pytest.raises(TableMismatchError) as err:
        target.ensure_table(TableSpec("in.c-b.t", ("a", "b", "c")))
    assert str(err.value) == 'table "in.c-b.t" has columns [a, b], the sink needs [a, b, c]'


def test_mismatch_column_order(target: Any) -> None:
    target.ensure_table(TableSpec("in.c-b.t", ("a", "b")))
    with pytest.raises(TableMismatchError, match=r"has columns \[a, b\], the sink needs \[b, a\]"):
        target.ensure_table(TableSpec("in.c-b.t", ("b", "a")))


def test_mismatch_primary_key(target: Any) -> None:
    target.ensure_table(TableSpec("in.c-b.t", ("a", "b")))
    with pytest.raises(TableMismatchError) as err:
        target.ensure_table(TableSpec("in.c-b.t", ("a", "b"), ("a",)))
    assert str(err.value) == 'table "in.c-b.t" has no primary key, the sink needs primary key [a]'
    target.ensure_table(TableSpec("in.c-b.k", ("a", "b"), ("a",)))
    with pytest.raises(TableMismatchError, match=r'table "in.c-b.k" has primary key \[a\], the sink needs \[b\]'):
        target.ensure_table(TableSpec("in.c-b.k", ("a", "b"), ("b",)))
    with pytest.raises(TableMismatchError, match=r"has primary key \[a\], the sink needs no primary key"):
        target.ensure_table(TableSpec("in.c-b.k", ("a", "b")))


def test_primary_key_order_does_not_matter(target: Any) -> None:
    target.ensure_table(TableSpec("in.c-b.t", ("a", "b", "c"), ("b", "a")))
    target.ensure_table(TableSpec("in.c-b.t", ("a", "b", "c"), ("a", "b")))


def test_invalid_specs(target: Any) -> None:
    with pytest.raises(ValueError, match="invalid table id"):
        target.ensure_table(TableSpec("events", ("a",)))
    with pytest.raises(TargetError, match="appears twice"):
        target.ensure_table(TableSpec("in.c-b.t", ("a", "a")))
    with pytest.raises(TargetError, match="not a column"):
        target.ensure_table(TableSpec("in.c-b.t", ("a",), ("b",)))


def test_quotes_in_names(target: Any, staging: Staging) -> None:
    spec = TableSpec('in.c-we"ird.ta"ble', ('co"l', "sp ace", "dot.ted"), ('co"l',))
    target.ensure_table(spec)
    target.import_files(staging.request(spec, [["1", "2", "3"], ["1", "4", "5"]]))
    assert target.tail(spec.table_id) == (['co"l', "sp ace", "dot.ted"], [("1", "4", "5")])


# -- imports ------------------------------------------------------------------


def test_import_without_key_appends(target: Any, staging: Staging) -> None:
    target.ensure_table(PLAIN)
    first = [["1", "t1", "a"], ["2", "t2", "b"], ["1", "t1", "a"]]
    result = target.import_files(staging.request(PLAIN, first))
    assert (result.rows_read, result.already_imported) == (3, False)
    target.import_files(staging.request(PLAIN, [["3", "t3", "c"]]))
    assert rows_of(target, PLAIN.table_id) == [("1", "t1", "a"), ("2", "t2", "b"), ("1", "t1", "a"), ("3", "t3", "c")]


def test_import_with_key_dedups_within_the_file_last_wins(target: Any, staging: Staging) -> None:
    target.ensure_table(KEYED)
    rows = [["1", "first", "a"], ["2", "only", "b"], ["1", "second", "c"], ["1", "third", "d"]]
    result = target.import_files(staging.request(KEYED, rows))
    assert result.rows_read == 4
    assert sorted(rows_of(target, KEYED.table_id)) == [("1", "third", "d"), ("2", "only", "b")]


def test_import_with_key_upserts_against_the_table(target: Any, staging: Staging) -> None:
    target.ensure_table(KEYED)
    target.import_files(staging.request(KEYED, [["1", "a", "x"], ["2", "b", "y"]]))
    target.import_files(staging.request(KEYED, [["2", "b2", "y2"], ["3", "c", "z"], ["2", "b3", "y3"]]))
    assert sorted(rows_of(target, KEYED.table_id)) == [("1", "a", "x"), ("2", "b3", "y3"), ("3", "c", "z")]


def test_key_dedup_across_the_files_of_one_import(target: Any, staging: Staging) -> None:
    """Several slices of one file: the later path wins."""
    target.ensure_table(KEYED)
    target.import_files(staging.request(KEYED, [["1", "old", ""]], [["1", "new", ""], ["2", "x", ""]]))
    assert sorted(rows_of(target, KEYED.table_id)) == [("1", "new", ""), ("2", "x", "")]


def test_composite_key(target: Any, staging: Staging) -> None:
    spec = TableSpec("in.c-b.pairs", ("a", "b", "v"), ("a", "b"))
    target.ensure_table(spec)
    target.import_files(staging.request(spec, [["1", "1", "x"], ["1", "2", "y"], ["2", "1", "z"], ["1", "1", "w"]]))
    target.import_files(staging.request(spec, [["1", "2", "Y"], ["12", "", "q"], ["1", "21", "r"]]))
    assert sorted(rows_of(target, spec.table_id)) == [
        ("1", "1", "w"),
        ("1", "2", "Y"),
        ("1", "21", "r"),
        ("12", "", "q"),
        ("2", "1", "z"),
    ]


def test_every_column_in_the_key(target: Any, staging: Staging) -> None:
    spec = TableSpec("in.c-b.set", ("a", "b"), ("a", "b"))
    target.ensure_table(spec)
    target.import_files(staging.request(spec, [["1", "x"], ["1", "x"], ["2", "y"]]))
    target.import_files(staging.request(spec, [["1", "x"], ["3", "z"]]))
    assert sorted(rows_of(target, spec.table_id)) == [("1", "x"), ("2", "y"), ("3", "z")]


@pytest.mark.parametrize("spec", [PLAIN, KEYED], ids=["no-key", "key"])
def test_import_is_idempotent(target: Any, staging: Staging, spec: TableSpec) -> None:
    target.ensure_table(spec)
    request = staging.request(spec, [["1", "a", "x"], ["2", "b", "y"]], import_id="sink/file-1")
    assert not target.import_files(request).already_imported
    before = rows_of(target, spec.table_id)
    again = target.import_files(request)
    assert again.already_imported
    # Same id, other content: still nothing written (the id identifies the file for good).
    other = staging.request(spec, [["9", "z", "z"]], import_id="sink/file-1")
    assert target.import_files(other).already_imported
    assert rows_of(target, spec.table_id) == before


def test_import_creates_a_missing_table(target: Any, staging: Staging) -> None:
    target.import_files(staging.request(PLAIN, [["1", "a", "x"]]))
    assert rows_of(target, PLAIN.table_id) == [("1", "a", "x")]


def test_empty_import_is_recorded(target: Any, staging: Staging) -> None:
    target.ensure_table(PLAIN)
    request = staging.request(PLAIN, [], import_id="empty")
    assert target.import_files(request).rows_read == 0
    assert target.import_files(request).already_imported
    no_paths = ImportRequest(PLAIN, "no-paths", [], SinkIdentity(1, "source", "sink"))
    assert target.import_files(no_paths).rows_read == 0
    assert rows_of(target, PLAIN.table_id) == []


# -- CSV edge cases -------------------------------------------------------------

EDGE_ROWS = [
    ["quote", 'say "hi"', '""'],
    ["newline", "line 1\nline 2", "a\r\nb"],
    ["empty", "", ""],
    ["unicode", "Příliš žluťoučký kůň 🐎", "日本語 ∑ Zoë"],
    ["comma", "a,b,c", ",,"],
    ["spaces", "  padded  ", "\t"],
    ["json", '{"a":[1,2,{"b":"c"}],"d":null}', "null"],
    ["backslash", "C:\\path\\", "\\N"],
    ["long", "x" * 200_000, "end"],
]


@pytest.mark.parametrize("spec", [PLAIN, KEYED], ids=["no-key", "key"])
def test_csv_edge_cases(target: Any, staging: Staging, spec: TableSpec) -> None:
    target.ensure_table(spec)
    target.import_files(staging.request(spec, EDGE_ROWS))
    got = rows_of(target, spec.table_id)
    assert sorted(got) == sorted(tuple(r) for r in EDGE_ROWS)
    # An empty field is an empty string, never NULL.
    assert all(v is not None for row in got for v in row)


def test_many_zstd_frames_and_files(target: Any, staging: Staging) -> None:
    target.ensure_table(PLAIN)
    rows = [[str(i), f"t{i}", f"body {i}\nwith newline"] for i in range(5000)]
    request = staging.request(PLAIN, rows[:3000], rows[3000:], frames=97)
    assert target.import_files(request).rows_read == 5000
    assert rows_of(target, PLAIN.table_id) == [tuple(r) for r in rows]


def test_uncompressed_and_gzip_staging(target: Any, tmp_path: Path) -> None:
    import gzip

    target.ensure_table(PLAIN)
    plain = tmp_path / "a.csv"
    plain.write_bytes(encode_rows([["1", "a", "x"]]))
    gz = tmp_path / "b.csv.gz"
    gz.write_bytes(gzip.compress(encode_rows([["2", "b", "y"]])))
    target.import_files(ImportRequest(PLAIN, "mixed", [plain, gz], SinkIdentity(1, "s", "k")))
    assert rows_of(target, PLAIN.table_id) == [("1", "a", "x"), ("2", "b", "y")]


@pytest.mark.parametrize(
    "content",
    [b'"1","a"\n', b'"1","a","b","c"\n', b'"1","a","unterminated\n', b'"1","\xff\xfe","x"\n'],
    ids=["too-few", "too-many", "unterminated", "not-utf8"],
)
def test_invalid_csv_fails_and_writes_nothing(target: Any, tmp_path: Path, content: bytes) -> None:
    target.ensure_table(PLAIN)
    path = tmp_path / "bad.csv.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(encode_rows([["0", "ok", "ok"]]) + content))
    request = ImportRequest(PLAIN, "bad", [path], SinkIdentity(1, "s", "k"))
    with pytest.raises(TargetError, match=r"bad\.csv\.zst"):
        target.import_files(request)
    assert rows_of(target, PLAIN.table_id) == []


def test_missing_staging_file_fails(target: Any, tmp_path: Path) -> None:
    target.ensure_table(PLAIN)
    request = ImportRequest(PLAIN, "gone", [tmp_path / "gone.csv.zst"], SinkIdentity(1, "s", "k"))
    with pytest.raises(TargetError, match=r"gone\.csv\.zst"):
        target.import_files(request)


# -- tables altered by hand ---------------------------------------------------------


@pytest.mark.parametrize("spec", [PLAIN, KEYED], ids=["no-key", "key"])
def test_altered_table_fails_clearly_and_writes_nothing(
    target: Any, raw: Raw, staging: Staging, spec: TableSpec
) -> None:
    target.ensure_table(spec)
    target.import_files(staging.request(spec, [["1", "a", "x"]]))
    raw.sql(f"ALTER TABLE {raw.name(spec.table_id)} ADD COLUMN extra TEXT")
    request = staging.request(spec, [["2", "b", "y"], ["1", "changed", "z"]], import_id="after-alter")
    with pytest.raises(TableMismatchError) as err:
        target.import_files(request)
    assert str(err.value) == (
        f'table "{spec.table_id}" has columns [{", ".join(spec.columns)}, extra],'
        f" the sink needs [{', '.join(spec.columns)}]"
    )
    assert raw.count(spec.table_id) == 1
    assert rows_of(target, spec.table_id) == [("1", "a", "x", None)]
    # Fixed by hand: the same file (same id) now imports.
    raw.sql(f"ALTER TABLE {raw.name(spec.table_id)} DROP COLUMN extra")
    assert not target.import_files(request).already_imported
    assert raw.count(spec.table_id) == (2 if spec.primary_key else 3)


def test_renamed_column_fails_clearly(target: Any, raw: Raw, staging: Staging) -> None:
    target.ensure_table(KEYED)
    raw.sql(f"ALTER TABLE {raw.name(KEYED.table_id)} RENAME COLUMN email TO mail")
    with pytest.raises(TableMismatchError, match=r"has columns \[id, name, mail\], the sink needs \[id, name, email\]"):
        target.import_files(staging.request(KEYED, [["1", "a", "x"]]))


# -- tail -----------------------------------------------------------------------


def test_tail_order_limit_and_skip(target: Any, staging: Staging) -> None:
    target.ensure_table(PLAIN)
    for batch in range(3):
        target.import_files(staging.request(PLAIN, [[f"{batch}-{i}", "t", "b"] for i in range(4)]))
    ids = [row[0] for row in rows_of(target, PLAIN.table_id)]
    assert ids == [f"{b}-{i}" for b in range(3) for i in range(4)]
    columns, last = target.tail(PLAIN.table_id, limit=3)
    assert columns == ["id", "at", "body"]
    assert [r[0] for r in last] == ["2-1", "2-2", "2-3"]
    assert [r[0] for r in target.tail(PLAIN.table_id, limit=3, skip=2)[1]] == ["1-3", "2-0", "2-1"]
    assert target.tail(PLAIN.table_id, limit=5, skip=20)[1] == []
    assert target.tail(PLAIN.table_id, limit=0)[1] == []
    with pytest.raises(TargetError, match="does not exist"):
        target.tail("in.c-b.missing")


def test_tail_of_a_keyed_table_in_import_order(target: Any, staging: Staging) -> None:
    target.ensure_table(KEYED)
    target.import_files(staging.request(KEYED, [["b", "1", ""], ["a", "1", ""]]))
    target.import_files(staging.request(KEYED, [["c", "2", ""]]))
    assert [r[0] for r in target.tail(KEYED.table_id, limit=1)[1]] == ["c"]
    assert {r[0] for r in target.tail(KEYED.table_id, limit=2, skip=1)[1]} == {"a", "b"}


# -- selection ---------------------------------------------------------------------


def test_open_target(tmp_path: Path, pg_admin_url: str) -> None:
    default = open_target(None, tmp_path)
    assert isinstance(default, SqliteTarget) and default.path == tmp_path / "tables.sqlite"
    default.close()
    explicit = open_target(f"sqlite://{tmp_path}/x.sqlite", tmp_path)
    assert isinstance(explicit, SqliteTarget) and explicit.path == tmp_path / "x.sqlite"
    explicit.close()
    pg = open_target(pg_admin_url, tmp_path)
    assert isinstance(pg, PostgresTarget) and pg.kind == "postgresql"
    pg.ensure_table(PLAIN)
    assert pg.table_exists(PLAIN.table_id)
    pg.close()
    with pytest.raises(TargetError, match="unsupported target"):
        open_target("mysql://x", tmp_path)


def test_open_target_to_read_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(TargetMissingError, match=f"^no target database at {missing / 'tables.sqlite'}$"):
        open_target(None, missing, create=False)
    with pytest.raises(TargetMissingError):
        open_target(f"sqlite://{missing}/x.sqlite", tmp_path, create=False)
    assert not missing.exists()
    open_target(None, tmp_path).close()
    reader = open_target(None, tmp_path, create=False)
    reader.close()


def test_parse_table_id() -> None:
    assert parse_table_id("in.c-bucket.table") == ("in.c-bucket", "table")
    assert parse_table_id("out.c-b.t.x") == ("out.c-b", "t.x")
    for bad in ("in.bucket.t", "x.c-b.t", "in.c-b", "in.c-.t", "in.c-b."):
        with pytest.raises(ValueError):
            parse_table_id(bad)


@pytest.mark.parametrize("spec", [PLAIN, KEYED], ids=["no-key", "key"])
def test_failure_in_the_middle_of_the_write_leaves_nothing(
    target: Any, raw: Raw, staging: Staging, spec: TableSpec
) -> None:
    """A row refused by the database (a trigger added by hand) after thousands
    were written: the whole import rolls back, the id stays unrecorded."""
    target.ensure_table(spec)
    name = raw.name(spec.table_id)
    if isinstance(target, SqliteTarget):
        raw.sql(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {name} WHEN NEW.id = 'boom'"
            " BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
        )
    else:
        raw.sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN IF NEW.id = 'boom' THEN RAISE EXCEPTION 'refused by trigger'; END IF; RETURN NEW; END$$"
        )
        raw.sql(f"CREATE TRIGGER refuse BEFORE INSERT ON {name} FOR EACH ROW EXECUTE FUNCTION refuse()")
    rows = [[f"{i:05d}", "a", "x"] for i in range(5000)] + [["boom", "b", "y"]]
    request = staging.request(spec, rows, import_id="refused")
    with pytest.raises(TargetError, match="refused by trigger"):
        target.import_files(request)
    assert raw.count(spec.table_id) == 0
    raw.sql(f"DROP TRIGGER refuse ON {name}" if isinstance(target, PostgresTarget) else "DROP TRIGGER refuse")
    assert target.import_files(request).rows_read == 5001
    assert raw.count(spec.table_id) == 5001


@pytest.mark.parametrize("spec", [PLAIN, KEYED], ids=["no-key", "key"])
def test_table_dropped_by_hand_is_created_again(target: Any, raw: Raw, staging: Staging, spec: TableSpec) -> None:
    target.import_files(staging.request(spec, [["1", "a", "x"]]))
    raw.sql(f"DROP TABLE {raw.name(spec.table_id)}")
    assert not target.table_exists(spec.table_id)
    target.import_files(staging.request(spec, [["2", "b", "y"]]))
    assert rows_of(target, spec.table_id) == [("2", "b", "y")]
