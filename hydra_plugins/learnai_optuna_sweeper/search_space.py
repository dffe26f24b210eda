"""Hydra's sweep grammar -> Optuna distributions, meaning what hydra-optuna-sweeper 1.3 means.

===================================  ==================================================
override                             distribution
===================================  ==================================================
``choice(a, b)`` / ``a,b``           ``CategoricalDistribution([a, b])``
``range(1, 7)``                      ``IntDistribution(1, 7)`` (stop *included*, as 1.3)
``range(1, 7, step=2)``              ``IntDistribution(1, 7, step=2)``
``range(0.5, 5.5, step=1)``          ``FloatDistribution(0.5, 5.5, step=1.0)``
``shuffle(range(1, 4))``             ``CategoricalDistribution([1, 2, 3])`` (Hydra's range)
``interval(0, 1)``                   ``FloatDistribution(0.0, 1.0)``
``int(interval(1, 6))``              ``IntDistribution(1, 6)``
``tag(log, interval(a, b))``         ``FloatDistribution(a, b, log=True)``
``tag(log, int(interval(a, b)))``    ``IntDistribution(a, b, log=True)``
===================================  ==================================================

The grid sampler runs the points the published plugin's grid ran: every choice, and for
``range(a, b, s)`` the points ``a, a+s, ...`` *below* ``b`` (Hydra's own range). Where 1.3's
grid silently dropped points (a stop that is not ``a`` plus a whole number of steps, an
``int(interval)``), the sweep is refused with a line that says what to write instead.

Non-sweep overrides (``a=1``) are fixed values passed to every trial; as in 1.3, a fixed
value of a key wins over a sweep of the same key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Transformer

from ._registry import SearchSpaceError

if TYPE_CHECKING:  # Hydra's plugin scan executes this module: Optuna loads when used
    from hydra.core.override_parser.types import Override
    from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

__all__ = [
    "SearchSpaceError",
    "endpoints",
    "from_search_space",
    "grid",
    "grid_values",
    "parse",
]


def _choices(override: Override) -> list[Any]:
    return list(override.sweep_iterator(transformer=Transformer.encode))


def _steps(start: float, stop: float, step: float) -> float:
    """How many whole steps fit in [start, stop], tolerating float error."""
    n = (stop - start) / step
    return float(round(n)) if abs(n - round(n)) < 1e-9 else float(math.floor(n))


def _range(key: str, line: str, start: Any, stop: Any, step: Any) -> BaseDistribution:
    from optuna.distributions import FloatDistribution, IntDistribution

    if step is None or step <= 0:
        raise SearchSpaceError(f"{key}: {line}: the step must be > 0 for the Optuna sweeper")
    if stop < start:
        raise SearchSpaceError(f"{key}: {line} is an empty range")
    if all(isinstance(v, int) for v in (start, stop, step)):
        high = start + (stop - start) // step * step  # Optuna would round down, with a warning
        return IntDistribution(start, high, step=step)
    start, step = float(start), float(step)
    high = round(start + _steps(start, float(stop), step) * step, 12)
    return FloatDistribution(start, high, step=step)


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution for one sweep override (:data:`__doc__` has the table)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    key, line, value = override.get_key_element(), override.input_line, override.value()
    try:
        if override.is_choice_sweep():
            return CategoricalDistribution(_choices(override))
        if override.is_range_sweep():
            if value.shuffle:
                return CategoricalDistribution(_choices(override))
            return _range(key, line or "", value.start, value.stop, value.step)
        if override.is_interval_sweep():
            log = "log" in value.tags
            if log and value.start <= 0:
                raise SearchSpaceError(
                    f"{key}: log interval needs a positive lower bound, got {value.start}"
                )
            if isinstance(value.start, int) and isinstance(value.end, int):
                return IntDistribution(value.start, value.end, log=log)
            return FloatDistribution(float(value.start), float(value.end), log=log)
    except SearchSpaceError:
        raise
    except ValueError as err:  # Optuna's own checks: low > high, empty choices, ...
        raise SearchSpaceError(f"{key}: {line}: {err}") from err
    raise SearchSpaceError(f"{key}: {line} is not a sweep the Optuna sweeper supports")


def parse(overrides: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """Split overrides into the search space and the fixed values (as typed).

    A later sweep of a key replaces an earlier one; a fixed value of a key wins over any
    sweep of it, as in hydra-optuna-sweeper 1.3.
    """
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.get_key_element()
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed[key] = override.get_value_element_as_str()
    for key in fixed:
        space.pop(key, None)
    return space, fixed


def from_search_space(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, BaseDistribution]:
    """Distributions from the deprecated ``hydra.sweeper.search_space`` key (1.1 syntax:
    ``{type: int|float|categorical, low, high, step, log, choices}``)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space: dict[str, BaseDistribution] = {}
    for key, entry in entries.items():
        kind = str(entry.get("type", "")).split(".")[-1]  # "int" or "DistributionType.int"
        low, high, step = entry.get("low"), entry.get("high"), entry.get("step")
        log = bool(entry.get("log", False))
        try:
            if kind == "categorical" and entry.get("choices") is not None:
                space[key] = CategoricalDistribution(list(entry["choices"]))
            elif kind == "int" and low is not None and high is not None:
                istep = int(step) if step is not None else 1
                space[key] = IntDistribution(int(low), int(high), log=log, step=istep)
            elif kind == "float" and low is not None and high is not None:
                space[key] = FloatDistribution(float(low), float(high), log=log, step=step)
            else:
                raise SearchSpaceError(
                    f"{key}: search_space entry {dict(entry)} needs type int/float with "
                    "low and high, or type categorical with choices"
                )
        except SearchSpaceError:
            raise
        except ValueError as err:
            raise SearchSpaceError(f"{key}: search_space entry {dict(entry)}: {err}") from err
    return space


def grid_values(key: str, override: str | None, dist: BaseDistribution) -> list[Any]:
    """The points the grid sampler runs for ``dist`` (from the sweep ``override``).

    Raises :class:`SearchSpaceError` for a continuous interval, and where
    hydra-optuna-sweeper 1.3's grid dropped points of a range or interval.
    """
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    where = f"{key}={override}" if override else key
    if isinstance(dist, FloatDistribution) and dist.step is None:
        raise SearchSpaceError(
            f"{where}: the grid sampler needs discrete values (choice or range), "
            "not a continuous interval"
        )
    if isinstance(dist, IntDistribution) and (dist.log or not _is_range(override)):
        raise SearchSpaceError(
            f"{where}: with the grid sampler, hydra-optuna-sweeper 1.3 left out the upper "
            f"bound of an interval; write the points: choice(...) or "
            f"range({dist.low}, {dist.high + 1})"
        )
    stop = _range_stop(override)
    step = dist.step
    n = _steps(dist.low, stop, step)  # whole steps from low to the range's stop
    if stop is None or not math.isclose(dist.low + n * step, stop, abs_tol=1e-9 * abs(step)):
        kept = [_point(dist, i) for i in range(int(n))]
        raise SearchSpaceError(
            f"{where}: the stop is not a whole number of steps from the start; "
            f"hydra-optuna-sweeper 1.3's grid ran {kept} here, Hydra's range runs "
            f"{[*kept, _point(dist, int(n))]}: write the one you mean as choice(...)"
        )
    return [_point(dist, i) for i in range(int(n))]


def grid(
    overrides: list[str], space: dict[str, BaseDistribution] | None = None, seed: int | None = None
) -> list[dict[str, Any]]:
    """Every point the grid sampler runs for ``overrides`` (``params`` entries as
    ``key=sweep``, then the command line's), shuffled by ``seed`` when given.

    Raises :class:`SearchSpaceError` with one line where the grid cannot run the space
    (a continuous interval, or points 1.3's grid dropped): call it before anything exists.
    """
    import itertools
    import random

    if space is None:
        space, _ = parse(overrides)
    texts = {
        o.get_key_element(): (o.input_line or "").split("=", 1)[-1]
        for o in OverridesParser.create().parse_overrides(list(overrides))
    }
    axes = {k: grid_values(k, texts.get(k), d) for k, d in space.items()}
    points = [dict(zip(axes, p, strict=True)) for p in itertools.product(*axes.values())]
    if seed is not None:
        random.Random(seed).shuffle(points)
    return points


def _point(dist: IntDistribution | FloatDistribution, i: int) -> Any:
    from optuna.distributions import IntDistribution

    if isinstance(dist, IntDistribution):
        return dist.low + i * dist.step
    return round(dist.low + i * dist.step, 12)


def _is_range(override: str | None) -> bool:
    return override is not None and override.strip().startswith("range(")


def _range_stop(override: str | None) -> float | None:
    if not _is_range(override):
        return None
    parsed = OverridesParser.create().parse_override(f"x={override}")
    return parsed.value().stop


def endpoints(dist: BaseDistribution) -> list[Any]:
    """Values worth validating before a study starts: the bounds, or every choice."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high]
