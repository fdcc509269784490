"""Targets: the databases imported rows end up in.

- :mod:`~pushstream.targets.base`: the :class:`~pushstream.targets.base.Target`
  interface, its requests, results and errors;
- :mod:`~pushstream.targets.sqlite`: SQLite, the embedded default;
- :mod:`~pushstream.targets.postgresql`: PostgreSQL (the target, its sink users,
  the classification of its errors);
- :mod:`~pushstream.targets.staging_csv`: staging files (Keboola CSV) read into Arrow;
- :mod:`~pushstream.targets.rows`: the staged rows on their way into a table
  (deduplicated on the key, gathered, refused rows found by bisecting);
- :mod:`~pushstream.targets.sql`: the SQL text both targets share.

:func:`open_target` is the one place that maps a target URL to an implementation.
"""

from __future__ import annotations

from pathlib import Path

from pushstream.targets.base import Target, TargetError


def target_kind(url: str | None) -> str:
    """``"sqlite"`` or ``"postgresql"``: which implementation a target URL names
    (``None`` is the embedded SQLite default). Any other URL: :class:`TargetError`."""
    if url is None or url.startswith("sqlite:"):
        return "sqlite"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql"
    raise TargetError(f'unsupported target "{url}", expected sqlite:///path or postgresql://...')


def open_target(url: str | None, data_dir: Path, *, create: bool = True) -> Target:
    """The target for a URL: ``None`` or ``sqlite:///path`` → SQLite (default
    ``<data dir>/tables.sqlite``), ``postgresql://...`` → PostgreSQL.

    With ``create=False`` (a reader such as ``pushstream tail``) a SQLite file
    that does not exist is not created: :class:`~pushstream.targets.base.TargetMissingError`."""
    if target_kind(url) == "sqlite":
        from pushstream.targets.sqlite import SqliteTarget

        path = data_dir / "tables.sqlite" if url in (None, "sqlite:", "sqlite://") else Path(url.split("://", 1)[1])
        return SqliteTarget(path, create=create)
    from pushstream.targets.postgresql import PostgresTarget

    assert url is not None
    return PostgresTarget(url)
