"""PostgreSQL, the production target, through ADBC (``adbc-driver-postgresql``).

- :mod:`~pushstream.targets.postgresql.target`: :class:`PostgresTarget`: tables,
  imports (as the sink's sink user) and reads;
- :mod:`~pushstream.targets.postgresql.sink_users`: the least-privileged sink
  user (a PostgreSQL role) of every sink: creation, grants, password rotation;
- :mod:`~pushstream.targets.postgresql.errors`: what an ADBC/libpq error means
  (unavailable, a refused row, an unprepared sink) and the :class:`TargetError` for it;
- :mod:`~pushstream.targets.postgresql.schema`: pushstream's own schema in the
  database and the catalog reads the others share.
"""

from pushstream.targets.postgresql.target import PostgresTarget

__all__ = ["PostgresTarget"]
