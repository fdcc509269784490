"""PostgreSQL only: per-sink roles and their privileges, password rotation,
restarts of the server in the middle of an import."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as pg_dbapi
import pytest
from targethelpers import Staging

from pgcluster import PgCluster
from pushstream.targets.base import SinkIdentity, TableSpec, TargetError, TargetUnavailableError
from pushstream.targets.postgresql import PostgresTarget
from pushstream.targets.postgresql.sink_users import scram_verifier

SINK_A = SinkIdentity(1, "web", "clicks")
SINK_B = SinkIdentity(1, "web", "users")
PLAIN = TableSpec("in.c-web.clicks", ("id", "url"))
KEYED = TableSpec("in.c-web.users", ("id", "name"), ("id",))


def database(target: PostgresTarget) -> str:
    return target.url.split("/")[-1].split("?")[0]


def as_superuser(cluster: PgCluster, target: PostgresTarget, sql: str) -> list[tuple[Any, ...]]:
    return cluster.execute(sql, database=database(target))


def credentials(cluster: PgCluster, target: PostgresTarget, sink: SinkIdentity) -> tuple[str, str]:
    role = target.sink_user(sink)
    rows = as_superuser(cluster, target, f"SELECT password FROM pushstream.sinks WHERE role = '{role}'")
    assert rows, f"no stored password for {role}"
    return role, str(rows[0][0])


class Session:
    """A connection as some role; :meth:`denied` asserts a statement is refused."""

    def __init__(self, url: str) -> None:
        self.conn = pg_dbapi.connect(url, autocommit=True)

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    def denied(self, sql: str) -> str:
        with pytest.raises(adbc_driver_manager.Error) as err:
            self.run(sql)
        message = str(err.value)
        assert "permission denied" in message or "must be owner" in message, message
        return message

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def session_as(pg_cluster: PgCluster, pg_target: PostgresTarget) -> Iterator[Any]:
    sessions: list[Session] = []

    def open_session(sink: SinkIdentity) -> Session:
        role, password = credentials(pg_cluster, pg_target, sink)
        session = Session(pg_cluster.url(role, password, database(pg_target)))
        sessions.append(session)
        return session

    yield open_session
    for session in sessions:
        session.close()


# -- roles and privileges ------------------------------------------------------------


def test_admin_is_not_a_superuser(pg_cluster: PgCluster, pg_target: PostgresTarget) -> None:
    admin = pg_target.url.split("://")[1].split(":")[0]
    assert as_superuser(
        pg_cluster, pg_target, f"SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = '{admin}'"
    ) == [(False, True)]


def test_prepare_sink_creates_a_login_role_with_a_stored_password(
    pg_cluster: PgCluster, pg_target: PostgresTarget
) -> None:
    pg_target.prepare_sink(SINK_A, PLAIN)
    pg_target.prepare_sink(SINK_A, PLAIN)  # idempotent
    role, password = credentials(pg_cluster, pg_target, SINK_A)
    assert role.startswith("pushstream_sink_") and len(role) <= 63
    assert len(password) >= 40
    flags = as_superuser(
        pg_cluster,
        pg_target,
        "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolinherit, rolpassword LIKE 'SCRAM-SHA-256$%'"
        f" FROM pg_authid WHERE rolname = '{role}'",
    )
    assert flags == [(True, False, False, False, False, True)]
    comment = as_superuser(pg_cluster, pg_target, f"SELECT shobj_description('{role}'::regrole, 'pg_authid')")
    assert comment == [("pushstream sink 1/web/clicks",)]
    # Another sink, another role; same ids in another database, another role too.
    assert pg_target.sink_user(SINK_B) != role


def test_imports_run_as_the_sink_role(pg_cluster: PgCluster, pg_target: PostgresTarget, staging: Staging) -> None:
    pg_target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A))
    role = pg_target.sink_user(SINK_A)
    owner = as_superuser(pg_cluster, pg_target, "SELECT sink_role FROM pushstream.imports")
    assert owner == [(role,)]
    active = as_superuser(pg_cluster, pg_target, f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}'")
    assert active == [(1,)]


def test_sink_role_privileges_without_key(pg_target: PostgresTarget, session_as: Any, staging: Staging) -> None:
    pg_target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A))
    pg_target.import_files(staging.request(KEYED, [["1", "x"]], sink=SINK_B))
    a = session_as(SINK_A)
    a.run("""INSERT INTO "in.c-web".clicks VALUES ('2', '/b')""")
    a.denied('SELECT * FROM "in.c-web".clicks')
    a.denied("""UPDATE "in.c-web".clicks SET url = 'x'""")
    a.denied('DELETE FROM "in.c-web".clicks')
    a.denied('TRUNCATE "in.c-web".clicks')
    # Another sink's table.
    a.denied("""INSERT INTO "in.c-web".users VALUES ('9', 'evil')""")
    a.denied('SELECT * FROM "in.c-web".users')
    # No DDL anywhere.
    a.denied('CREATE TABLE "in.c-web".mine (x text)')
    a.denied("CREATE TABLE public.mine (x text)")
    a.denied("CREATE SCHEMA mine")
    a.denied("CREATE TABLE pushstream.mine (x text)")
    a.denied('ALTER TABLE "in.c-web".clicks ADD COLUMN x text')
    a.denied('DROP TABLE "in.c-web".clicks')
    # Credentials are the admin's only.
    a.denied("SELECT * FROM pushstream.sinks")


def test_sink_role_privileges_with_key(pg_target: PostgresTarget, session_as: Any, staging: Staging) -> None:
    pg_target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A))
    pg_target.import_files(staging.request(KEYED, [["1", "x"]], sink=SINK_B))
    b = session_as(SINK_B)
    # INSERT ... ON CONFLICT DO UPDATE needs INSERT, UPDATE and SELECT.
    b.run("""INSERT INTO "in.c-web".users VALUES ('1', 'y') ON CONFLICT (id) DO UPDATE SET name = excluded.name""")
    assert b.run('SELECT name FROM "in.c-web".users') == [("y",)]
    b.denied('DELETE FROM "in.c-web".users')
    b.denied('TRUNCATE "in.c-web".users')
    b.denied("""INSERT INTO "in.c-web".clicks VALUES ('2', '/b')""")
    b.denied('CREATE TABLE "in.c-web".mine (x text)')
    # Its staging table only: another sink's staging table is out of reach.
    staging_b = "stage_" + pg_target.sink_user(SINK_B).removeprefix("pushstream_sink_")
    assert b.run(f"SELECT count(*) FROM pushstream.{staging_b}") == [(0,)]
    b.denied(f"DROP TABLE pushstream.{staging_b}")
    b.denied(f"ALTER TABLE pushstream.{staging_b} ADD COLUMN x text")


def test_import_bookkeeping_is_per_role(pg_target: PostgresTarget, session_as: Any, staging: Staging) -> None:
    pg_target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A, import_id="a-1"))
    pg_target.import_files(staging.request(KEYED, [["1", "x"]], sink=SINK_B, import_id="b-1"))
    a = session_as(SINK_A)
    assert a.run("SELECT import_id FROM pushstream.imports") == [("a-1",)]
    # It cannot mark another sink's file as imported (row-level security).
    role_b = pg_target.sink_user(SINK_B)
    with pytest.raises(adbc_driver_manager.Error, match="row-level security"):
        a.run(
            "INSERT INTO pushstream.imports (sink_role, import_id, table_id, row_count)"
            f" VALUES ('{role_b}', 'b-2', 't', 0)"
        )
    a.denied("DELETE FROM pushstream.imports")
    a.denied("UPDATE pushstream.imports SET row_count = 0")


def test_one_import_id_in_two_sinks(pg_target: PostgresTarget, staging: Staging) -> None:
    """Import ids are per sink: the same id in two sinks imports both."""
    pg_target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A, import_id="same"))
    other = SinkIdentity(1, "app", "clicks")
    assert not pg_target.import_files(
        staging.request(PLAIN, [["2", "/b"]], sink=other, import_id="same")
    ).already_imported
    assert len(pg_target.tail(PLAIN.table_id)[1]) == 2


def test_two_sinks_into_one_table(pg_target: PostgresTarget, staging: Staging) -> None:
    other = SinkIdentity(1, "app", "users")
    pg_target.import_files(staging.request(KEYED, [["1", "a"], ["2", "b"]], sink=SINK_B))
    pg_target.import_files(staging.request(KEYED, [["2", "B"], ["3", "c"]], sink=other))
    assert sorted(pg_target.tail(KEYED.table_id)[1]) == [("1", "a"), ("2", "B"), ("3", "c")]


def test_changing_the_table_of_a_sink_revokes_the_old_one(
    pg_target: PostgresTarget, session_as: Any, staging: Staging
) -> None:
    pg_target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A))
    moved = TableSpec("in.c-other.clicks", ("id", "url"), ("id",))
    pg_target.prepare_sink(SINK_A, moved)
    pg_target.import_files(staging.request(moved, [["1", "/x"]], sink=SINK_A))
    a = session_as(SINK_A)
    a.denied("""INSERT INTO "in.c-web".clicks VALUES ('2', '/b')""")
    a.run("""INSERT INTO "in.c-other".clicks VALUES ('2', '/b')""")


def test_rotation_changes_the_password(pg_cluster: PgCluster, pg_target: PostgresTarget, staging: Staging) -> None:
    pg_target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A))
    role, old = credentials(pg_cluster, pg_target, SINK_A)
    pg_target.rotate_sink_credentials(SINK_A)
    _, new = credentials(pg_cluster, pg_target, SINK_A)
    assert new != old
    with pytest.raises(adbc_driver_manager.Error, match="password authentication failed"):
        Session(pg_cluster.url(role, old, database(pg_target)))
    Session(pg_cluster.url(role, new, database(pg_target))).close()
    # Imports go on with the new password.
    pg_target.import_files(staging.request(PLAIN, [["2", "/b"]], sink=SINK_A))
    assert len(pg_target.tail(PLAIN.table_id)[1]) == 2
    # A sink that never had a role: nothing to rotate.
    pg_target.rotate_sink_credentials(SinkIdentity(1, "none", "none"))


def test_drop_sink_drops_the_role_and_keeps_the_rows(
    pg_cluster: PgCluster, pg_target: PostgresTarget, staging: Staging
) -> None:
    pg_target.import_files(staging.request(KEYED, [["1", "x"]], sink=SINK_B))
    role = pg_target.sink_user(SINK_B)
    pg_target.drop_sink(SINK_B)
    pg_target.drop_sink(SINK_B)  # idempotent
    assert as_superuser(pg_cluster, pg_target, f"SELECT count(*) FROM pg_roles WHERE rolname = '{role}'") == [(0,)]
    assert as_superuser(pg_cluster, pg_target, f"SELECT count(*) FROM pushstream.sinks WHERE role = '{role}'") == [(0,)]
    assert pg_target.tail(KEYED.table_id)[1] == [("1", "x")]
    # Importing again prepares a new role.
    pg_target.import_files(staging.request(KEYED, [["2", "y"]], sink=SINK_B))
    assert len(pg_target.tail(KEYED.table_id)[1]) == 2


def test_role_dropped_behind_our_back_is_recreated(
    pg_cluster: PgCluster, pg_target: PostgresTarget, staging: Staging
) -> None:
    pg_target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A))
    other = PostgresTarget(pg_target.url)
    try:
        other.drop_sink(SINK_A)
    finally:
        other.close()
    # The cached session survives the DROP ROLE; a new process would re-prepare.
    fresh = PostgresTarget(pg_target.url)
    try:
        fresh.import_files(staging.request(PLAIN, [["2", "/b"]], sink=SINK_A))
    finally:
        fresh.close()
    assert len(pg_target.tail(PLAIN.table_id)[1]) == 2


def test_scram_verifier_is_accepted(pg_cluster: PgCluster, pg_target: PostgresTarget) -> None:
    verifier = scram_verifier("s3cret")
    as_superuser(pg_cluster, pg_target, f"CREATE ROLE scram_check LOGIN PASSWORD '{verifier}'")
    try:
        Session(pg_cluster.url("scram_check", "s3cret", database(pg_target))).close()
        with pytest.raises(adbc_driver_manager.Error, match="password authentication failed"):
            Session(pg_cluster.url("scram_check", "wrong", database(pg_target)))
    finally:
        as_superuser(pg_cluster, pg_target, "DROP ROLE scram_check")


def test_too_long_names(pg_target: PostgresTarget) -> None:
    with pytest.raises(TargetError, match="longer than PostgreSQL's 63 bytes"):
        pg_target.ensure_table(TableSpec("in.c-b." + "t" * 64, ("a",)))
    with pytest.raises(TargetError, match="longer than PostgreSQL's 63 bytes"):
        pg_target.ensure_table(TableSpec("in.c-b.t", ("ž" * 32,)))


def test_key_columns_use_byte_order(pg_cluster: PgCluster, pg_target: PostgresTarget) -> None:
    pg_target.ensure_table(KEYED)
    collations = as_superuser(
        pg_cluster,
        pg_target,
        "SELECT attname, collname FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation"
        """ WHERE attrelid = '"in.c-web".users'::regclass AND attnum > 0 ORDER BY attnum""",
    )
    assert collations == [("id", "C"), ("name", "default")]


# -- availability ------------------------------------------------------------------


def test_server_down_is_unavailable_then_recovers(pg_cluster: PgCluster, staging: Staging) -> None:
    """A private cluster (stopping the shared one would disturb other tests)."""
    with PgCluster({"fsync": "off"}) as private:
        target = PostgresTarget(private.create_admin())
        try:
            target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A))
            private.stop()
            with pytest.raises(TargetUnavailableError, match="PostgreSQL is unavailable"):
                target.import_files(staging.request(PLAIN, [["2", "/b"]], sink=SINK_A, import_id="while-down"))
            with pytest.raises(TargetUnavailableError):
                target.ensure_table(KEYED)
            private.start()
            # Cached connections died with the server; they are replaced.
            target.ensure_table(KEYED)
            target.import_files(staging.request(PLAIN, [["2", "/b"]], sink=SINK_A, import_id="while-down"))
            assert [r[0] for r in target.tail(PLAIN.table_id)[1]] == ["1", "2"]
        finally:
            target.close()


@pytest.mark.parametrize("spec", [PLAIN, KEYED], ids=["no-key", "key"])
def test_restart_in_the_middle_of_an_import(pg_cluster: PgCluster, staging: Staging, spec: TableSpec) -> None:
    """PostgreSQL restarts while the rows are being written: the import fails as
    unavailable, nothing of it is committed, and the retry lands every row once."""
    with PgCluster({"fsync": "off"}) as private:
        target = PostgresTarget(private.create_admin())
        try:
            target.import_files(staging.request(spec, [["0", "seed"]], sink=SINK_A))
            rows = [[str(i), f"value {i}" * 10] for i in range(1, 300_001)]
            request = staging.request(spec, rows, sink=SINK_A, import_id="big")
            role = target.sink_user(SINK_A)

            def restart_while_writing() -> None:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    busy = private.execute(
                        f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{role}' AND state = 'active'"
                        """ AND (query LIKE 'COPY%' OR query LIKE 'INSERT INTO "in.c%')""",
                        database=database(target),
                    )
                    if busy[0][0]:
                        private.restart("immediate")
                        return
                    time.sleep(0.005)

            restarter = threading.Thread(target=restart_while_writing)
            restarter.start()
            with pytest.raises(TargetUnavailableError):
                target.import_files(request)
            restarter.join()
            # Nothing of the failed import was committed.
            assert len(target.tail(spec.table_id, limit=10)[1]) == 1
            result = target.import_files(request)
            assert (result.rows_read, result.already_imported) == (300_000, False)
            assert target.import_files(request).already_imported
            count = private.execute(f"SELECT count(*), count(DISTINCT id) FROM {_q(spec)}", database=database(target))
            assert count == [(300_001, 300_001)]
        finally:
            target.close()


def _q(spec: TableSpec) -> str:
    schema, table = PostgresTarget.table_name(spec.table_id)
    return f'"{schema}"."{table}"'


def test_first_preparation_failing_leaves_no_half_state(
    pg_cluster: PgCluster, pg_target: PostgresTarget, staging: Staging
) -> None:
    """The very first call fails (table mismatch) and rolls back the bookkeeping it
    created; the next sink still gets everything it needs."""
    as_superuser(pg_cluster, pg_target, 'CREATE SCHEMA "in.c-web"')
    as_superuser(pg_cluster, pg_target, 'CREATE TABLE "in.c-web".clicks (id text)')
    as_superuser(pg_cluster, pg_target, f'ALTER SCHEMA "in.c-web" OWNER TO {database(pg_target)}')
    as_superuser(pg_cluster, pg_target, f'ALTER TABLE "in.c-web".clicks OWNER TO {database(pg_target)}')
    from pushstream.targets.base import TableMismatchError

    with pytest.raises(TableMismatchError, match=r"has columns \[id\], the sink needs \[id, url\]"):
        pg_target.import_files(staging.request(PLAIN, [["1", "/a"]], sink=SINK_A))
    pg_target.import_files(staging.request(KEYED, [["1", "x"]], sink=SINK_B))
    assert pg_target.tail(KEYED.table_id)[1] == [("1", "x")]
