"""Hydra's sweep grammar -> Optuna distributions, as hydra-optuna-sweeper 1.3 reads it
(:mod:`hydra_plugins.learnai_optuna_sweeper.search_space`).

Fast: no subprocess, no Hydra app; the override strings are the ones users type.
"""

from __future__ import annotations

import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from hydra_plugins.learnai_optuna_sweeper.search_space import (
    SearchSpaceError,
    endpoints,
    from_search_space,
    grid,
    grid_values,
    parse,
)

# pyproject ignores DeprecationWarning; the sweeper and its API must not raise any.
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")


def dist_of(override: str):
    space, fixed = parse([override])
    assert not fixed, f"{override!r} should be a sweep, not a fixed value: {fixed}"
    assert list(space) == ["x"]
    return space["x"]


# The published plugin's own table (its Optuna 2 names -> today's classes), then more.
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("x=choice(1,2)", CategoricalDistribution([1, 2])),
        ("x=choice(true, false)", CategoricalDistribution([True, False])),
        ("x=choice('hello', 'world')", CategoricalDistribution(["hello", "world"])),
        ("x=range(1,3)", IntDistribution(1, 3)),  # 1.3 includes the stop
        ("x=interval(1, 5)", FloatDistribution(1.0, 5.0)),
        ("x=int(interval(1, 5))", IntDistribution(1, 5)),
        ("x=tag(log, interval(1, 5))", FloatDistribution(1.0, 5.0, log=True)),
        ("x=tag(log, int(interval(1, 5)))", IntDistribution(1, 5, log=True)),
        ("x=range(0.5, 5.5, step=1)", FloatDistribution(0.5, 5.5, step=1.0)),
        # more
        ("x=choice(0.1, 1e-3)", CategoricalDistribution([0.1, 0.001])),
        ("x=a,b", CategoricalDistribution(["a", "b"])),
        ("x=1,2,4", CategoricalDistribution([1, 2, 4])),
        ("x=range(3)", IntDistribution(0, 3)),
        ("x=range(1,7,2)", IntDistribution(1, 7, step=2)),
        ("x=range(1,8,2)", IntDistribution(1, 7, step=2)),  # 8 is not on the grid of steps
        ("x=range(-5.5, 5.5, step=0.5)", FloatDistribution(-5.5, 5.5, step=0.5)),
        ("x=range(0, 0.9, 0.3)", FloatDistribution(0.0, 0.9, step=0.3)),  # no float drift
        ("x=range(0.1,0.5,0.1)", FloatDistribution(0.1, 0.5, step=0.1)),
        ("x=interval(0,1)", FloatDistribution(0.0, 1.0)),
        ("x=tag(log,interval(1e-4,10))", FloatDistribution(1e-4, 10.0, log=True)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_override_becomes_the_published_distribution(override: str, expected) -> None:
    assert dist_of(override) == expected


def test_shuffled_range_is_categorical_over_hydras_range() -> None:
    dist = dist_of("x=shuffle(range(1,4))")
    assert isinstance(dist, CategoricalDistribution)
    assert sorted(dist.choices) == [1, 2, 3]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["key=choice(1,2)"], ({"key": CategoricalDistribution([1, 2])}, {})),
        (["key=5"], ({}, {"key": "5"})),
        (
            ["key1=choice(1,2)", "key2=5", "key3=range(1,3)"],
            (
                {"key1": CategoricalDistribution([1, 2]), "key3": IntDistribution(1, 3)},
                {"key2": "5"},
            ),
        ),
        # a fixed value wins over a sweep of the same key, whatever the order (as 1.3)
        (["x=1", "x=choice(1,2)"], ({}, {"x": "1"})),
        (["x=choice(1,2)", "x=3"], ({}, {"x": "3"})),
        # a later sweep replaces an earlier one
        (["x=interval(0,1)", "x=int(interval(2,5))"], ({"x": IntDistribution(2, 5)}, {})),
        (["optimizer=sgd", "+extra=1"], ({}, {"optimizer": "sgd", "+extra": "1"})),
        ([], ({}, {})),
    ],
)
def test_parse_splits_space_and_fixed_values(arguments, expected) -> None:
    assert parse(arguments) == expected


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("x=tag(log,interval(0,1))", "positive lower bound"),
        ("x=interval(5,1)", "x"),
        ("x=int(interval(6,1))", "x"),
        ("x=range(5,1)", "empty range"),
        ("x=range(5,1,-1)", "step must be > 0"),
    ],
)
def test_invalid_sweeps_name_the_key(override: str, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message) as info:
        parse([override])
    assert str(info.value).startswith("x"), "the message names the key first"


# --- the grid sampler's points ---------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "points"),
    [
        ("x=choice(a,b,c)", ["a", "b", "c"]),
        ("x=0.01,1", [0.01, 1]),
        # 1.3's grid runs Hydra's range: the stop is left out
        ("x=range(1,7)", [1, 2, 3, 4, 5, 6]),
        ("x=range(1,7,2)", [1, 3, 5]),
        ("x=range(-1.0, 1.0, step=1)", [-1.0, 0.0]),
        ("x=range(0, 0.9, 0.3)", [0.0, 0.3, 0.6]),
    ],
)
def test_grid_points_are_the_published_grid(override: str, points) -> None:
    value = override.split("=", 1)[1]
    assert grid_values("x", value, dist_of(override)) == pytest.approx(points)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("x=interval(0,1)", "not a continuous interval"),
        ("x=tag(log,interval(1e-4,10))", "not a continuous interval"),
        ("x=int(interval(1,3))", r"left out the upper bound.*range\(1, 4\)"),
        ("x=range(1,8,2)", r"1.3's grid ran \[1, 3, 5\].*Hydra's range runs \[1, 3, 5, 7\]"),
    ],
)
def test_grid_refuses_what_it_cannot_run_as_published(override: str, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=message):
        grid_values("x", override.split("=", 1)[1], dist_of(override))


# --- the deprecated search_space key ----------------------------------------------------


def test_deprecated_search_space_entries_become_distributions() -> None:
    space = from_search_space(
        {
            "a": {"type": "categorical", "choices": [1, 2, 3]},
            "b": {"type": "int", "low": 0, "high": 10, "step": 2},
            "c": {"type": "int", "low": 1, "high": 100, "log": True},
            "d": {"type": "float", "low": 0, "high": 1},
            "e": {"type": "float", "low": 0, "high": 10, "step": 2},
            "f": {"type": "float", "low": 1, "high": 100, "log": True},
        }
    )
    assert space == {
        "a": CategoricalDistribution([1, 2, 3]),
        "b": IntDistribution(0, 10, step=2),
        "c": IntDistribution(1, 100, log=True),
        "d": FloatDistribution(0.0, 1.0),
        "e": FloatDistribution(0.0, 10.0, step=2),
        "f": FloatDistribution(1.0, 100.0, log=True),
    }


def test_incomplete_search_space_entry_is_refused_by_name() -> None:
    with pytest.raises(SearchSpaceError, match=r"^b: search_space entry"):
        from_search_space({"b": {"type": "int", "low": 0}})


@pytest.mark.parametrize(
    ("override", "values"),
    [
        ("x=choice(8,0)", [8, 0]),
        ("x=int(interval(1,6))", [1, 6]),
        ("x=tag(log,interval(1e-4,10))", [1e-4, 10.0]),
        ("x=range(1,7,2)", [1, 7]),
    ],
)
def test_endpoints_are_bounds_or_every_choice(override: str, values) -> None:
    assert endpoints(dist_of(override)) == values


def test_grid_is_every_combination_and_a_seed_shuffles_it() -> None:
    overrides = ["x=choice(-1, 1)", "y=range(-1.0, 1.0, step=1)", "z=foo"]
    points = grid(overrides)
    assert points == [
        {"x": -1, "y": -1.0},
        {"x": -1, "y": 0.0},
        {"x": 1, "y": -1.0},
        {"x": 1, "y": 0.0},
    ]
    shuffled = grid(overrides, seed=3)
    assert shuffled != points and sorted(map(str, shuffled)) == sorted(map(str, points))
    assert grid(overrides, seed=3) == shuffled


def test_grid_refuses_a_continuous_interval_before_anything_runs() -> None:
    with pytest.raises(SearchSpaceError, match=r"^lr=interval\(0, 1\): the grid sampler"):
        grid(["depth=choice(1,2)", "lr=interval(0, 1)"])
