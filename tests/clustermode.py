"""Opt-in: run the suites that start servers or in-process apps against the
PostgreSQL control plane (``serve --cluster``) instead of ``state.sqlite``.

With ``PUSHSTREAM_TEST_CLUSTER=1``, the ``server_factory`` fixture passes
``--cluster`` and :func:`apitest.make_app` sets ``cluster``, each with a fresh
database of the test cluster per data dir (a server restarted on the same data
dir finds its state again). Off by default: the single-node suite stays as it is.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from pgcluster import PgCluster

#: Whether this run uses the cluster mode.
ENABLED = os.environ.get("PUSHSTREAM_TEST_CLUSTER") == "1"

_active: list[PgCluster] = []
_urls: dict[Path, str] = {}
_numbers = itertools.count(1)


def activate(cluster: PgCluster) -> None:
    _active[:] = [cluster]


def deactivate() -> None:
    _active.clear()
    _urls.clear()


def url_for(data_dir: Path) -> str | None:
    """The ``--cluster`` URL of a data dir (a fresh database the first time), or
    ``None`` when the cluster mode is off."""
    if not _active:
        return None
    key = data_dir.resolve()
    if key not in _urls:
        name = f"pushstream_c{os.getpid()}_{next(_numbers)}"
        _urls[key] = _active[0].create_admin(role=name, database=name)
    return _urls[key]
