"""Telling a run that died of its store from one that died of a bug.

A full disk and a store that went away mid-run surface as whatever the layer that
noticed raises (``OSError``, SQLAlchemy's ``OperationalError``, an ``MlflowException``
wrapping a urllib3 retry error). :func:`explain_failure` turns them into one line.
"""

from __future__ import annotations

import errno

from learnai.secrets import mask_secrets
from learnai.tracking.uris import StoreError

__all__ = ["StoreLost", "explain_failure"]

_DISK_FULL = ("database or disk is full", "no space left on device")
_UNREACHABLE = (
    "max retries exceeded",
    "connection refused",
    "server closed the connection",
    "connection failed",
    "could not connect",
    "terminating connection",
    "read timed out",
    "connection reset",
    "connection aborted",
)


class StoreLost(StoreError):
    """A store that failed mid-run (gone, or its disk full): every later job of the
    command would fail the same way, so the command stops with this one line."""


def explain_failure(exc: BaseException, uri: str) -> StoreLost | None:
    """A one-line :class:`StoreLost` for a run that died of its store, else None.

    A full disk (``ENOSPC``, SQLite's "database or disk is full") and a store that went
    away mid-run (refused or dropped connections, HTTP retries exhausted) are told apart
    from bugs by walking the exception's chain.
    """
    if not isinstance(exc, Exception):
        return None
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        text = str(cause).lower()
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            # A copy names its source first and the file it could not write second
            # (shutil): the full disk is the second's, not a temporary folder's.
            path = getattr(cause, "filename2", None) or cause.filename
            where = f" writing {path}" if path else ""
            return StoreLost(f"the disk is full{where}: {cause.strerror}")
        if any(marker in text for marker in _DISK_FULL):
            return StoreLost(f"the disk is full: {_first_line(cause)} (store {mask_secrets(uri)})")
        if any(marker in text for marker in _UNREACHABLE):
            if "refused" in text:
                reason = "connection refused"
            elif "timed out" in text:
                reason = "no reply (timed out)"
            else:
                reason = _first_line(cause)
            return StoreLost(f"tracking.uri: lost the store {mask_secrets(uri)} mid-run: {reason}")
        cause = cause.__cause__ or cause.__context__
    return None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return mask_secrets(text[:300])
