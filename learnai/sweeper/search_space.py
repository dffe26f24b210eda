"""Hydra's sweep grammar -> Optuna distributions.

==============================  ==========================================
override                        distribution
==============================  ==========================================
``choice(a, b)`` / ``a,b``      ``CategoricalDistribution([a, b])``
``range(1, 7)``                 ``IntDistribution(1, 6)`` (stop excluded, as in Hydra)
``range(1, 7, 2)``              ``IntDistribution(1, 5, step=2)``
``range(0.1, 0.5, 0.1)``        ``FloatDistribution(0.1, 0.4, step=0.1)``
``shuffle(range(1, 4))``        ``CategoricalDistribution([1, 2, 3])``
``interval(0, 1)``              ``FloatDistribution(0.0, 1.0)``
``int(interval(1, 6))``         ``IntDistribution(1, 6)``
``tag(log, interval(a, b))``    ``FloatDistribution(a, b, log=True)``
==============================  ==========================================

Non-sweep overrides (``a=1``) are fixed values passed to every trial.
"""

from __future__ import annotations

import math
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)


class SearchSpaceError(ValueError):
    """A sweeper param that cannot become an Optuna distribution."""


def _range_values(override: Override) -> list[Any]:
    return list(override.sweep_iterator(transformer=Transformer.encode))


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution for one sweep override."""
    key = override.get_key_element()
    value = override.value()
    try:
        if override.is_choice_sweep():
            return CategoricalDistribution(_range_values(override))
        if override.is_range_sweep():
            values = _range_values(override)
            if not values:
                raise SearchSpaceError(f"{key}: {override.input_line} is an empty range")
            if value.shuffle:
                return CategoricalDistribution(values)
            if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
                return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
            step = float(value.step)
            # Round off float error (0 + 0.3 * 3 = 0.8999...): Optuna would round the
            # top down to a multiple of the step and lose the last point.
            high = round(float(value.start) + step * (len(values) - 1), 12)
            return FloatDistribution(float(value.start), high, step=step)
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
    except ValueError as err:  # Optuna's own checks: low > high, bad step, ...
        raise SearchSpaceError(f"{key}: {override.input_line}: {err}") from err
    raise SearchSpaceError(f"{key}: {override.input_line} is not a supported sweep")


def parse(arguments: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """Split overrides into the search space and the fixed values."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()  # a later override of a key wins
        if override.is_sweep_override():
            space[key] = distribution(override)
            fixed.pop(key, None)
        else:
            fixed[key] = override.get_value_element_as_str()
            space.pop(key, None)
    return space, fixed


def grid_values(dist: BaseDistribution) -> list[Any]:
    """Every point of a discrete distribution, for Optuna's GridSampler."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution) and not dist.log:
        return list(range(dist.low, dist.high + 1, dist.step))
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        n = int(math.floor((dist.high - dist.low) / dist.step + 1e-9)) + 1
        return [dist.low + i * dist.step for i in range(n)]
    raise SearchSpaceError(
        f"the grid sampler needs discrete params (choice or range), got {dist!r}"
    )


def endpoints(dist: BaseDistribution) -> list[Any]:
    """Values worth validating before a study starts: the bounds, or every choice."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high]
