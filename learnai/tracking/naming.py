"""Run names built from what a sweep varies: ``lr=1 depth=2``, ``#12 lr=0.01234 depth=3``.

MLflow gives unnamed runs random names (``bright-skunk-487``) and every sweep parent used
to be ``sweep optimizer.lr=...``: nothing told runs apart in the UI. These functions are
pure (strings in, a string out) so the runner and the sweep lifecycle name runs the same
way, and a table test pins the format.

Example:
    >>> child_run_name({"optimizer.lr": "0.012345678", "model.depth": "3"}, 12, "search")
    '#12 lr=0.01235 depth=3'
    >>> sweep_run_name("learnai", ["optimizer.lr=0.01,1", "trainer.epochs=20"], 3)
    'learnai #3: lr=0.01,1'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

MAX_NAME = 250  # MLflow rejects longer run names
MAX_VALUE = 40  # one value longer than this is cut, so one path cannot crowd out the rest
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SWEEP = re.compile(r"^\s*(choice|range|interval|tag|int|float|glob|shuffle|sort)\s*\(")


def override_key(override: str) -> str:
    """``+optimizer.lr=1`` -> ``optimizer.lr``; ``optimizer@x=sgd`` -> ``optimizer``."""
    key = override.split("=", 1)[0].strip().lstrip("+~")
    return key.split("@", 1)[0]


def override_value(override: str) -> str:
    """The text after the first ``=`` (empty for a ``~key`` deletion)."""
    return override.split("=", 1)[1].strip() if "=" in override else ""


def is_sweep(value: str) -> bool:
    """Whether an override value sweeps (``0.01,1``, ``choice(...)``, ``interval(...)``).

    A comma inside brackets or quotes (``[1,2]``, ``'a,b'``) is one value, as in Hydra.
    """
    if _SWEEP.match(value):
        return True
    depth, quote = 0, ""
    for ch in value:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            return True
    return False


def swept_keys(sweep_overrides: Iterable[str], search_space: Iterable[str] = ()) -> list[str]:
    """Keys a sweep varies: its sweeping command-line overrides plus a search space's keys."""
    keys = [override_key(o) for o in sweep_overrides if "=" in o and is_sweep(override_value(o))]
    keys += [k for k in search_space if k not in keys]
    return list(dict.fromkeys(keys))


# Keys that change how a run is watched or recorded, not what it learns: they name no run.
UNNAMED = (
    "tracking.",
    "trainer.progress",
    "trainer.num_threads",
    "trainer.sync_every",
    "trainer.animation.",
)


def naming_keys(keys: Iterable[str]) -> list[str]:
    """``keys`` without those in :data:`UNNAMED` (``lr=1``, not ``lr=1 progress=false``)."""
    return [k for k in keys if not k.startswith(UNNAMED)]


def swept_values(job_overrides: Iterable[str], keys: Iterable[str]) -> dict[str, str]:
    """A job's values for ``keys``, in the order of ``keys``, from its task overrides."""
    given = {override_key(o): override_value(o) for o in job_overrides if "=" in o}
    return {k: given[k] for k in keys if k in given}


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each dotted key's shortest dotted suffix that no other key shares.

    ``optimizer.lr`` -> ``lr``; ``a.x.lr`` and ``b.x.lr`` -> ``a.x.lr`` and ``b.x.lr``.
    """
    parts = {k: k.split(".") for k in keys}
    out: dict[str, str] = {}
    for key, p in parts.items():
        for n in range(1, len(p) + 1):
            suffix = ".".join(p[-n:])
            clash = any(other != key and ".".join(q[-n:]) == suffix for other, q in parts.items())
            if not clash:
                break
        out[key] = suffix
    return out


def short_value(value: str) -> str:
    """A number at 4 significant digits (``0.012345678`` -> ``0.01235``), quotes dropped,
    anything longer than 40 characters cut with an ellipsis. A URL's password is masked
    first: cut, the URL no longer looks like one and the password would stay."""
    from learnai.secrets import mask_secrets

    text = mask_secrets(value.strip())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if _NUMBER.fullmatch(text):
        is_int = re.fullmatch(r"[+-]?\d+", text) is not None
        if not is_int:
            number = float(text)
            mantissa = re.split(r"[eE]", text.lstrip("+-"))[0]
            digits = mantissa.replace(".", "").strip("0")
            if len(digits) > 4:  # a typed 0.01 stays 0.01; a sampled float is rounded
                text = f"{number:.4g}"
    if len(text) > MAX_VALUE:
        text = text[: MAX_VALUE - 1] + "\u2026"
    return text


def _join(head: str, parts: list[str]) -> str:
    name = " ".join([head, *parts]).strip() if head else " ".join(parts)
    if len(name) > MAX_NAME:
        name = name[: MAX_NAME - 1] + "\u2026"
    return name


def child_run_name(swept: Mapping[str, str], trial_number: int | None, experiment: str) -> str:
    """The name of one job of a sweep: its swept values, led by its trial number.

    ``{"optimizer.lr": "1", "model.depth": "2"}`` -> ``lr=1 depth=2``; an Optuna trial
    gets ``#12 lr=0.01235 depth=3`` (the number keeps names unique when rounded values
    coincide). With nothing swept: ``experiment`` (and the trial number).
    """
    names = short_keys(list(swept))
    parts = [f"{names[k]}={short_value(v)}" for k, v in swept.items()]
    head = f"#{trial_number}" if trial_number is not None else ""
    if not parts:
        return _join(experiment, [head] if head else [])
    return _join(head, parts)


def sweep_run_name(experiment: str, sweep_overrides: Iterable[str], sweep_id: str | int) -> str:
    """The name of a sweep's parent run: experiment, sweep id and what the sweep varies.

    ``("learnai", ["optimizer.lr=0.01,1", "trainer.epochs=20"], 3)`` ->
    ``learnai #3: lr=0.01,1``. An int ``sweep_id`` is shown as ``#N``, text as given
    (e.g. the sweep directory's time ``23-10-05``). Fixed overrides are left out: they
    are the same for every child and recorded on the parent as a tag.
    """
    overrides = [o for o in sweep_overrides if "=" in o and is_sweep(override_value(o))]
    names = short_keys([override_key(o) for o in overrides])
    parts = [f"{names[override_key(o)]}={_short_sweep(override_value(o))}" for o in overrides]
    label = f"#{sweep_id}" if isinstance(sweep_id, int) else str(sweep_id)
    head = f"{experiment} {label}".strip()
    return _join(head + (":" if parts else ""), parts)


def _short_sweep(value: str) -> str:
    """``0.012345678,1`` -> ``0.01235,1``; function sweeps lose their spaces."""
    if _SWEEP.match(value):
        return re.sub(r"\s+", "", value)
    return ",".join(short_value(v) for v in value.split(","))


VERDICT_SEP = " \u00b7 "  # "lr=1 · diverged at epoch 1": the name, then how it ended


def verdict(outcome: str, diverged_at: int | None = None, stopped_at: int | None = None) -> str:
    """How a run ended, in the words its name carries: ``converged``, ``stalled``,
    ``diverged at epoch 3``, ``pruned at epoch 20``, ``failed``.

    Example:
        >>> verdict("diverged", diverged_at=1)
        'diverged at epoch 1'
    """
    if outcome == "diverged" and diverged_at is not None:
        return f"diverged at epoch {diverged_at}"
    if outcome == "pruned" and stopped_at is not None:
        return f"pruned at epoch {stopped_at}"
    return outcome


def with_verdict(name: str, text: str) -> str:
    """``lr=1`` + ``diverged at epoch 1`` -> ``lr=1 · diverged at epoch 1``: the verdict
    stays whole within MLflow's limit; the name is cut instead."""
    tail = VERDICT_SEP + text
    room = MAX_NAME - len(tail)
    head = name if len(name) <= room else name[: max(room - 1, 0)] + "\u2026"
    return head + tail
