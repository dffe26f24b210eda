"""Hydra's sweep grammar -> Optuna distributions (:mod:`learnai.sweeper.search_space`).

Fast: no subprocess, no Hydra app; the override strings are the ones users type.
"""

from __future__ import annotations

import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from learnai.sweeper.search_space import SearchSpaceError, endpoints, grid_values, parse


def dist_of(override: str):
    space, fixed = parse([override])
    assert not fixed, f"{override!r} should be a sweep, not a fixed value: {fixed}"
    assert list(space) == ["x"]
    return space["x"]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("x=choice(a,b)", CategoricalDistribution(["a", "b"])),
        ("x=choice(0.1, 1e-3)", CategoricalDistribution([0.1, 0.001])),
        ("x=choice(true,false)", CategoricalDistribution([True, False])),
        ("x=a,b", CategoricalDistribution(["a", "b"])),
        ("x=1,2,4", CategoricalDistribution([1, 2, 4])),
        ("x=range(1,7)", IntDistribution(1, 6)),
        ("x=range(3)", IntDistribution(0, 2)),
        ("x=range(1,7,2)", IntDistribution(1, 5, step=2)),
        ("x=range(0.1,0.5,0.1)", FloatDistribution(0.1, 0.4, step=0.1)),
        ("x=range(0.5,2.0,0.5)", FloatDistribution(0.5, 1.5, step=0.5)),
        ("x=interval(0,1)", FloatDistribution(0.0, 1.0)),
        ("x=interval(1,6)", FloatDistribution(1.0, 6.0)),  # interval is float unless int()
        ("x=int(interval(1,6))", IntDistribution(1, 6)),
        ("x=tag(log,interval(1e-4,10))", FloatDistribution(1e-4, 10.0, log=True)),
        ("x=tag(log, interval(1e-4, 10))", FloatDistribution(1e-4, 10.0, log=True)),
        ("x=tag(log,int(interval(1,64)))", IntDistribution(1, 64, log=True)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_override_becomes_distribution(override: str, expected) -> None:
    assert dist_of(override) == expected


def test_shuffled_range_is_categorical_over_the_range() -> None:
    dist = dist_of("x=shuffle(range(1,4))")
    assert isinstance(dist, CategoricalDistribution)
    assert sorted(dist.choices) == [1, 2, 3]


@pytest.mark.parametrize(
    ("override", "values"),
    [
        ("x=range(0.1,0.5,0.1)", [0.1, 0.2, 0.3, 0.4]),
        # 0 + 0.3 * 3 = 0.8999...: the top must not be rounded down to 0.6
        ("x=range(0,1,0.3)", [0.0, 0.3, 0.6, 0.9]),
        ("x=range(1,2,0.1)", [1 + i / 10 for i in range(10)]),
        ("x=range(0,0.35,0.05)", [i * 0.05 for i in range(7)]),
    ],
)
def test_float_range_keeps_every_point_hydra_would_run(override: str, values) -> None:
    dist = dist_of(override)
    assert isinstance(dist, FloatDistribution)
    assert grid_values(dist) == pytest.approx(values)


def test_fixed_values_are_passed_through_as_typed() -> None:
    space, fixed = parse(
        ["optimizer.lr=0.01", "model.depth=range(1,3)", "+trainer.extra=1", "optimizer=sgd"]
    )
    assert space == {"model.depth": IntDistribution(1, 2)}
    assert fixed == {"optimizer.lr": "0.01", "+trainer.extra": "1", "optimizer": "sgd"}


def test_group_choice_is_a_categorical_over_options() -> None:
    space, _ = parse(["optimizer=choice(adam,sgd)"])
    assert space == {"optimizer": CategoricalDistribution(["adam", "sgd"])}


@pytest.mark.parametrize(
    ("arguments", "space", "fixed"),
    [
        (["x=1", "x=choice(1,2)"], {"x": CategoricalDistribution([1, 2])}, {}),
        (["x=choice(1,2)", "x=3"], {}, {"x": "3"}),
        (["x=interval(0,1)", "x=int(interval(2,5))"], {"x": IntDistribution(2, 5)}, {}),
        (["x=4", "x=5"], {}, {"x": "5"}),
    ],
)
def test_later_override_of_a_key_wins(arguments, space, fixed) -> None:
    assert parse(arguments) == (space, fixed)


def test_empty_arguments_make_an_empty_space() -> None:
    assert parse([]) == ({}, {})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("x=tag(log,interval(0,1))", "positive lower bound"),
        ("x=tag(log,interval(-1,1))", "positive lower bound"),
        ("x=interval(5,1)", "x"),
        ("x=int(interval(6,1))", "x"),
        ("x=range(5,1)", "empty range"),
        ("x=range(1,1)", "empty range"),
    ],
)
def test_invalid_sweeps_raise_search_space_error(override: str, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message) as info:
        parse([override])
    assert str(info.value).startswith("x"), "the message names the key first"


def test_search_space_error_is_a_value_error() -> None:
    assert issubclass(SearchSpaceError, ValueError)


@pytest.mark.parametrize(
    ("override", "values"),
    [
        ("x=choice(a,b,c)", ["a", "b", "c"]),
        ("x=0.01,1", [0.01, 1]),
        ("x=range(1,7)", [1, 2, 3, 4, 5, 6]),
        ("x=range(1,7,2)", [1, 3, 5]),
        ("x=int(interval(1,3))", [1, 2, 3]),
    ],
)
def test_grid_values_enumerate_discrete_distributions(override: str, values) -> None:
    assert grid_values(dist_of(override)) == values


@pytest.mark.parametrize(
    "override",
    ["x=interval(0,1)", "x=tag(log,interval(1e-4,10))", "x=tag(log,int(interval(1,64)))"],
)
def test_grid_values_reject_continuous_distributions(override: str) -> None:
    with pytest.raises(SearchSpaceError, match="grid sampler needs discrete"):
        grid_values(dist_of(override))


@pytest.mark.parametrize(
    ("override", "values"),
    [
        ("x=choice(8,0)", [8, 0]),
        ("x=int(interval(1,6))", [1, 6]),
        ("x=tag(log,interval(1e-4,10))", [1e-4, 10.0]),
        ("x=range(1,7,2)", [1, 5]),
    ],
)
def test_endpoints_are_bounds_or_every_choice(override: str, values) -> None:
    assert endpoints(dist_of(override)) == values
