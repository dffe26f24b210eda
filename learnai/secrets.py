"""Hiding passwords before a value is printed, logged, tagged or written to a file.

Store URIs may carry a password (``postgresql://user:pw@host/db``). Everything learnai
shows or records goes through one of these functions first: its log records through
:class:`MaskingFilter` on the ``learnai`` logger, everything else by a call. Masking
works on *parsed* values where there are any (a Hydra override is parsed with Hydra's
own parser, so an escaped ``user\\:pw@`` is unescaped first); :func:`mask_secrets` is the
last line of defence for free text and also matches the escaped forms Hydra writes.

Example:
    >>> mask_secrets("postgresql://alice:s3/cr@t@db:5432/runs")
    'postgresql://alice:***@db:5432/runs'
    >>> mask_override(r"tracking.uri=postgresql://alice\\:pw@db/runs")
    "tracking.uri='postgresql://alice:***@db/runs'"
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MASK",
    "MaskingFilter",
    "mask_mapping",
    "mask_override",
    "mask_overrides",
    "mask_secrets",
    "move_secrets",
]

MASK = "***"

# scheme://user:password@ -- the password may hold '/', '@' and ':' (base64 and generated
# secrets do): it runs to the last '@' before the next URL or whitespace. Hydra escapes
# ':' in overrides it writes (``user\:pw@``), so an optional backslash precedes the ':'.
_URL_SECRET = re.compile(
    r"(?P<head>[a-zA-Z][\w+.-]*://[^:/@\s\\]*)(?P<sep>\\?:)(?P<pw>(?:(?!://)\S)+)@"
)
# libpq keyword form and URL query parameters: ``password=pw`` (also ``?password=pw``).
_KEYWORD_SECRET = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)\s*\\?[=:]\s*)(?P<pw>[^\s&;,]+)", re.I
)
# Config keys whose whole value is a secret.
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key)$", re.I)


def mask_secrets(text: str) -> str:
    """``text`` with the password of every URL (and ``password=...``) replaced by ``***``."""
    text = _URL_SECRET.sub(lambda m: f"{m['head']}{m['sep']}{MASK}@", text)
    return _KEYWORD_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)


def is_secret_key(key: str) -> bool:
    """Whether a (dotted) config key names a secret, e.g. ``db.password``."""
    return bool(_SECRET_KEY.search(key.rsplit(".", 1)[-1]))


def mask_mapping(tree: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a nested mapping with secret-named keys and URL passwords masked."""
    return {k: MASK if is_secret_key(str(k)) else _mask_value(v) for k, v in tree.items()}


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, Mapping):
        return mask_mapping(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_mask_value(v) for v in value)
    return value


def mask_override(override: str) -> str:
    """One command-line override with any secret in its *parsed* value masked.

    ``tracking.uri=postgresql://u\\:pw@h/db`` (Hydra's escaped form) and
    ``'tracking.uri=postgresql://u:pw@h/db'`` both come back with ``***`` for ``pw``.
    A value that holds no secret is returned unchanged; text Hydra cannot parse is
    masked as free text.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_override(override)
    except Exception:  # not an override Hydra accepts: mask it as text
        return mask_secrets(override)
    key = parsed.get_key_element()  # with its +, ++ or ~ prefix
    if parsed.is_delete() and parsed.value() is None:
        return override
    if is_secret_key(parsed.key_or_group):
        return f"{key}={MASK}"
    value = parsed.value()
    masked = _mask_sweep(value)
    if masked is value:
        return mask_secrets(override)
    return f"{key}={masked}"


def mask_overrides(overrides: list[str]) -> str:
    """Overrides as one line, each masked on its parsed value (:func:`mask_override`)."""
    return " ".join(mask_override(o) for o in overrides)


def _mask_sweep(value: Any) -> Any:
    """``value`` itself when it holds no secret, else its masked override text."""
    from hydra.core.override_parser.types import ChoiceSweep

    if isinstance(value, ChoiceSweep):
        items = [_mask_value(v) for v in value.list]
        if items == list(value.list):
            return value
        return "choice(" + ", ".join(_format(v) for v in items) + ")"
    masked = _mask_value(value)
    if masked == value:
        return value
    return _format(masked)


def _format(value: Any) -> str:
    """Override text for a plain value (strings quoted, so nothing needs escaping)."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_format(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_format(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


class MaskingFilter(logging.Filter):
    """Masks passwords in the records of the logger it is added to (learnai's own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


# A whole URL value with a password: scheme://user:password@rest, the password running
# to the last '@' (it may hold '@', '/' and ':'), as :data:`_URL_SECRET` reads it.
_CREDENTIALED_URL = re.compile(
    r"^(?P<scheme>[a-zA-Z][\w+.-]*)://(?P<user>[^:/@\s]*):(?P<pw>\S+)@(?P<rest>[^@\s]*)$"
)
# Characters a password cannot hold unencoded in a URL's user part.
_URL_UNSAFE = re.compile(r"[@/?#\s]")


def move_secrets(argv: list[str], environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """``argv`` with every password typed in a URL override moved out, and the
    environment variables that now carry them.

    Hydra writes the command line's overrides into every job's ``.hydra/overrides.yaml``,
    ``hydra.yaml`` and ``config.yaml``; MLflow prints an ``http://user:pw@host`` tracking
    URI in its "View run ... at:" lines. So before Hydra composes, the ``learnai``
    command moves the password into the environment: an ``http(s)`` ``tracking.uri``'s
    user and password into ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``
    (MLflow's own), any other URL's password into ``LEARNAI_PASSWORD_<KEY>``, read back
    by an ``${oc.env:...}`` interpolation. A password's '@', '/', '?' and '#' are
    percent-encoded on the way, so the URL it makes is the one meant.
    ``$MLFLOW_TRACKING_URI`` with a password is treated like ``tracking.uri``.

    Example:
        >>> move_secrets(["tracking.uri=postgresql://me:pw@db/runs"], {})
        (["tracking.uri='postgresql://me:${oc.env:LEARNAI_PASSWORD_TRACKING_URI}@db/runs'"],
         {'LEARNAI_PASSWORD_TRACKING_URI': 'pw'})
    """
    env: dict[str, str] = {}
    moved = [_move_secret(arg, env) for arg in argv]
    uri = environ.get("MLFLOW_TRACKING_URI", "")
    if (m := _CREDENTIALED_URL.match(uri)) and m["scheme"].lower() in ("http", "https"):
        env["MLFLOW_TRACKING_URI"] = _to_mlflow_env(m, env)
    return moved, env


def _move_secret(arg: str, env: dict[str, str]) -> str:
    if arg.startswith("-") or "=" not in arg or "://" not in arg:
        return arg
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_override(arg)
    except Exception:  # Hydra will say what is wrong with it
        return arg
    value = parsed.value()
    if parsed.is_sweep_override() or not isinstance(value, str):
        return arg
    m = _CREDENTIALED_URL.match(value)
    if m is None:
        return arg
    key = parsed.key_or_group
    if key == "tracking.uri" and m["scheme"].lower() in ("http", "https"):
        url = _to_mlflow_env(m, env)
    else:
        var = "LEARNAI_PASSWORD_" + re.sub(r"\W", "_", key).upper()
        env[var] = _URL_UNSAFE.sub(lambda c: f"%{ord(c[0]):02X}", m["pw"])
        url = f"{m['scheme']}://{m['user']}:${{oc.env:{var}}}@{m['rest']}"
    return f"{parsed.get_key_element()}={_format(url)}"


def _to_mlflow_env(m: re.Match[str], env: dict[str, str]) -> str:
    """The URL without its user part; the user and password in MLflow's variables."""
    from urllib.parse import unquote

    env["MLFLOW_TRACKING_USERNAME"] = unquote(m["user"])
    env["MLFLOW_TRACKING_PASSWORD"] = unquote(m["pw"])
    return f"{m['scheme']}://{m['rest']}"
