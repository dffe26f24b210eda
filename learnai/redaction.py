"""Keep known passwords out of everything this process prints or logs.

Masking URLs by pattern misses text that other libraries format (Hydra prints a failed
job's overrides with ':' escaped as '\\:'). So the passwords are taken from the parsed
config values once, and every stream write and log record of the process is scrubbed
of them, in whichever form they appear.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

_URL_PASSWORD = re.compile(r"[a-zA-Z][\w+.-]*://[^:/@\s]*:(?P<pw>[^\s]+)@")
_secrets: set[str] = set()


def passwords_in(values: Iterable[Any]) -> set[str]:
    """The passwords of ``scheme://user:password@host`` URLs among ``values``."""
    found = set()
    for value in values:
        if isinstance(value, str):
            for m in _URL_PASSWORD.finditer(value):
                found.add(m["pw"])
    return found


def _forms(secret: str) -> set[str]:
    """The secret as it may be printed: plain, Hydra-escaped, URL-quoted, and each of
    those inside a Python repr (a list of overrides prints its backslashes doubled)."""
    from urllib.parse import quote

    escaped = re.sub(r"([\\()\[\]{}:=, '\"])", r"\\\1", secret)
    forms = {secret, escaped, quote(secret, safe="")}
    return forms | {f.replace("\\", "\\\\") for f in forms}


def scrub(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


class _ScrubbedStream:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard(values: Iterable[Any]) -> None:
    """Scrub the passwords found in ``values`` from stdout, stderr and every log record."""
    new = {form for pw in passwords_in(values) for form in _forms(pw) if len(pw) >= 3}
    if not new:
        return
    first = not _secrets
    _secrets.update(new)
    if not first:
        return
    sys.stdout = _ScrubbedStream(sys.stdout)  # type: ignore[assignment]
    sys.stderr = _ScrubbedStream(sys.stderr)  # type: ignore[assignment]
    make_record = logging.getLogRecordFactory()

    def scrubbed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(scrubbed_record)


def config_strings(cfg: Any) -> list[str]:
    """Every string value of a DictConfig (unresolved, so nothing is evaluated)."""
    from omegaconf import OmegaConf

    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            out.append(node)

    walk(OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False))
    return out
