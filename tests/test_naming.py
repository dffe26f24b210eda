"""Run names from what a sweep varies: a table of inputs -> names (learnai.tracking.naming)."""

from __future__ import annotations

import pytest

from learnai.tracking import naming


@pytest.mark.parametrize(
    ("swept", "trial", "experiment", "expected"),
    [
        ({"optimizer.lr": "1", "model.depth": "2"}, None, "learnai", "lr=1 depth=2"),
        ({"optimizer.lr": "0.01"}, None, "learnai", "lr=0.01"),
        # Optuna samples long floats: 4 significant digits, led by the trial number.
        (
            {"optimizer.lr": "0.0123456789", "model.depth": "3"},
            12,
            "lr_depth_search",
            "#12 lr=0.01235 depth=3",
        ),
        ({"optimizer.lr": "1.23456e-05"}, 0, "s", "#0 lr=1.235e-05"),
        ({"optimizer.lr": "100000.0"}, None, "s", "lr=100000.0"),  # few digits: as typed
        # Same last component: the shortest suffix that tells them apart.
        ({"optimizer.lr": "1", "scheduler.lr": "2"}, None, "x", "optimizer.lr=1 scheduler.lr=2"),
        ({"a.x.lr": "1", "b.x.lr": "2", "c.y": "3"}, None, "x", "a.x.lr=1 b.x.lr=2 y=3"),
        ({"optimizer": "sgd"}, None, "x", "optimizer=sgd"),
        (
            {"tracking.uri": "'sqlite:///a/very/long/path/to/some/store/mlflow.db'"},
            None,
            "x",
            "uri=sqlite:///a/very/long/path/to/some/stor\u2026",
        ),
        ({}, None, "learnai", "learnai"),
        ({}, 7, "lr_depth_search", "lr_depth_search #7"),
    ],
)
def test_child_run_name(swept, trial, experiment, expected):
    assert naming.child_run_name(swept, trial, experiment) == expected


def test_names_stay_within_mlflows_limit():
    swept = {f"group{i}.key{i}": "v" * 100 for i in range(20)}
    name = naming.child_run_name(swept, 123456, "e")
    assert len(name) == naming.MAX_NAME
    assert name.startswith("#123456 key0=")


def test_trial_numbers_keep_rounded_names_unique():
    names = {
        naming.child_run_name({"optimizer.lr": v}, n, "s")
        for n, v in enumerate(["0.0123451", "0.0123452", "0.0123453"])
    }
    assert len(names) == 3


@pytest.mark.parametrize(
    ("overrides", "sweep_id", "expected"),
    [
        (["optimizer.lr=0.01,1", "trainer.epochs=20"], 3, "learnai #3: lr=0.01,1"),
        (
            ["optimizer.lr=0.01,1", "model.depth=1,2"],
            "23-10-05",
            "learnai 23-10-05: lr=0.01,1 depth=1,2",
        ),
        (["experiment=lr_depth_search"], 2, "learnai #2"),
        (
            ["'optimizer.lr=tag(log, interval(1e-4, 1))'".strip("'")],
            1,
            "learnai #1: lr=tag(log,interval(1e-4,1))",
        ),
        (["model=linear,mlp", "data.noise=[1,2]"], 1, "learnai #1: model=linear,mlp"),
        (["optimizer.lr=0.0123456,1"], 1, "learnai #1: lr=0.01235,1"),
    ],
)
def test_sweep_run_name(overrides, sweep_id, expected):
    assert naming.sweep_run_name("learnai", overrides, sweep_id) == expected


@pytest.mark.parametrize(
    ("sweep", "space", "job", "expected"),
    [
        (
            ["optimizer.lr=0.01,1", "trainer.epochs=20"],
            [],
            ["optimizer.lr=1", "trainer.epochs=20"],
            {"optimizer.lr": "1"},
        ),
        (["+model.depth=1,2", "x=[1,2]"], [], ["+model.depth=2", "x=[1,2]"], {"model.depth": "2"}),
        (
            ["trainer.epochs=5"],
            ["optimizer.lr", "model.depth"],
            ["optimizer.lr=0.5", "model.depth=3", "trainer.epochs=5", "trial.number=1"],
            {"optimizer.lr": "0.5", "model.depth": "3"},
        ),
        (["optimizer.lr=choice(0.1, 1)"], [], ["optimizer.lr=0.1"], {"optimizer.lr": "0.1"}),
    ],
)
def test_swept_keys_and_values(sweep, space, job, expected):
    keys = naming.swept_keys(sweep, space)
    assert naming.swept_values(job, keys) == expected
