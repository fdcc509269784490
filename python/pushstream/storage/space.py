"""Telling a full disk apart from other failures: it clears by itself once space
is freed, so clients are asked to retry (``503`` + ``Retry-After``) and imports
are retried soon instead of backing off for hours."""

from __future__ import annotations

import errno

_PHRASES = ("no space left on device", "disk is full", "disk quota exceeded")


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error (or one it was raised from) says a file system is full."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(seen).lower()
        if any(phrase in text for phrase in _PHRASES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
