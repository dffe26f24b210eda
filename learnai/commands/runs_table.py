"""``learnai runs``' table: the frame as text, ordered by a key (``--sort``), or cut to
each sweep's best run (``--best``).

Sorting keeps the tree: top-level runs are ordered among themselves and each sweep's
children among themselves, so a child never leaves its parent. A value sorts as a
number where it reads as one (``lr`` ``0.01`` before ``1``), missing ones last.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from learnai.config.keys import closest

if TYPE_CHECKING:
    import pandas as pd

ALIASES = {
    "val_loss": "final_val_loss",
    "train_loss": "final_train_loss",
    "loss": "final_val_loss",
    "r2": "val_r2",
    "start": "start_time",
    "run": "name",
    "id": "run_id",
}
_FIXED = ["final_val_loss", "final_train_loss", "val_r2", "start_time", "name", "outcome",
          "status", "trial", "run_id"]  # fmt: skip


class SortKeyError(ValueError):
    """A ``--sort`` key that names no column or param; the message lists the near ones."""


def sort_keys(params: list[str]) -> dict[str, str]:
    """Every name ``--sort`` takes, to its column: aliases, columns, each param by its
    full key and by the short name run names use (``lr`` for ``optimizer.lr``)."""
    from learnai.tracking import naming

    names = {**{c: c for c in _FIXED}, **ALIASES, **{p: p for p in params}}
    names.update({short: full for full, short in naming.short_keys(params).items()})
    return names


def sort_frame(frame: pd.DataFrame, key: str, params: list[str]) -> pd.DataFrame:
    """``frame`` ordered by ``key`` (``-key``: descending), each sweep's runs kept
    under their parent; :class:`SortKeyError` for a key that is no column nor one of
    the ``params`` columns."""
    import pandas as pd

    descending = key.startswith("-")
    name = key.lstrip("-")
    names = sort_keys(params)
    if name not in names:
        near = closest(name, sorted(names))
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        shown = [*ALIASES, "outcome", "trial", *sorted(set(names) - set(_FIXED) - set(ALIASES))]
        raise SortKeyError(f"unknown sort key {name!r}{hint} (keys: {', '.join(shown)})")
    column = frame[names[name]]
    numbers = pd.to_numeric(column, errors="coerce")
    values = numbers if numbers.notna().any() else column.astype("string")
    rank = {rid: v for rid, v in zip(frame["run_id"], values, strict=True)}

    def order(ids: list[str]) -> list[str]:
        present = [i for i in ids if not pd.isna(rank[i])]
        missing = [i for i in ids if pd.isna(rank[i])]
        return sorted(present, key=lambda i: rank[i], reverse=descending) + missing

    ids = set(frame["run_id"])
    children: dict[Any, list[str]] = defaultdict(list)
    for rid, parent in zip(frame["run_id"], frame["parent_run_id"], strict=True):
        children[parent if parent in ids else None].append(rid)
    ordered: list[str] = []

    def visit(rid: str) -> None:
        ordered.append(rid)
        for child in order(children.get(rid, [])):
            visit(child)

    for rid in order(children[None]):
        visit(rid)
    return frame.set_index("run_id", drop=False).loc[ordered].reset_index(drop=True)


def best_only(frame: pd.DataFrame) -> pd.DataFrame:
    """Each sweep's parent followed by its best run (see ``runs_frame``'s ``best``)."""
    best = frame[frame["best"]]
    keep = set(best["run_id"]) | set(best["parent_run_id"].dropna())
    return frame[frame["run_id"].isin(keep)].reset_index(drop=True)


def _fmt_loss(x: Any) -> str:
    return f"{x:.4g}" if _present(x) else ""


def _fmt_swept(value: Any) -> str:
    from learnai.tracking import naming

    if isinstance(value, dict):
        names = naming.short_keys(list(value))
        return " ".join(f"{names[k]}={naming.short_value(str(v))}" for k, v in value.items())
    return "" if value is None else str(value)


def _present(value: Any) -> bool:
    import pandas as pd

    return value is not None and not pd.isna(value)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def format_table(frame: pd.DataFrame) -> str:
    """The frame as a fixed-width text table, children indented under their parent."""
    header = ["run", "outcome", "swept", "train_loss", "val_loss", "trial", "run_id"]
    depth: dict[str, int] = {}
    lines = []
    for row in frame.to_dict("records"):
        level = depth.get(row["parent_run_id"], -1) + 1 if row["parent_run_id"] else 0
        depth[row["run_id"]] = level
        outcome = row["outcome"] if row["status"] == "FINISHED" else row["status"]
        trial = ""
        if _present(row["trial"]):
            state = row["trial_state"] if _present(row["trial_state"]) else ""
            trial = f"{int(row['trial'])} {state}".strip()
        lines.append(
            [
                "  " * level + str(row["name"] or ""),  # whole: a sweep's name says what it swept
                str(outcome or ""),
                _cut(_fmt_swept(row["swept"]), 60),
                _fmt_loss(row["final_train_loss"]),
                _fmt_loss(row["final_val_loss"]),
                trial,
                row["run_id"],
            ]
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    out += [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    return "\n".join(out)
