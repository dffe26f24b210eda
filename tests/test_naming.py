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


# --- the verdict a run's name and description carry ---------------------------------------


@pytest.mark.parametrize(
    ("outcome", "diverged_at", "stopped_at", "expected"),
    [
        ("converged", None, 200, "converged"),
        ("stalled", None, 3, "stalled"),
        ("diverged", 1, 51, "diverged at epoch 1"),
        ("pruned", None, 20, "pruned at epoch 20"),
        ("failed", None, None, "failed"),
    ],
)
def test_verdict(outcome, diverged_at, stopped_at, expected):
    assert naming.verdict(outcome, diverged_at, stopped_at) == expected


@pytest.mark.parametrize(
    ("name", "verdict", "expected"),
    [
        ("lr=1", "diverged at epoch 1", "lr=1 \u00b7 diverged at epoch 1"),
        ("#12 lr=0.0124", "pruned at epoch 20", "#12 lr=0.0124 \u00b7 pruned at epoch 20"),
        ("learnai", "converged", "learnai \u00b7 converged"),
    ],
)
def test_names_with_their_verdict(name, verdict, expected):
    assert naming.with_verdict(name, verdict) == expected


def test_a_long_name_is_cut_and_its_verdict_kept_whole():
    name = naming.child_run_name({f"group{i}.key{i}": "v" * 100 for i in range(20)}, 3, "e")
    full = naming.with_verdict(name, "diverged at epoch 12")
    assert len(full) == naming.MAX_NAME
    assert full.endswith("\u2026 \u00b7 diverged at epoch 12") and full.startswith("#3 key0=")


def test_a_runs_description_says_how_it_ended_and_where_to_look():
    from learnai.tracking.notes import run_note

    note = run_note("stalled", "stalled", 0.5, 0.4, 3, 0.9).splitlines()
    assert note[0] == (
        "**stalled**: training ended without a good fit (val_r2 < 0.9): train longer, or "
        "raise the learning rate."
    )
    assert note[1] == "final val_loss 0.5 | val_r2 0.400 | 3 epochs"
    assert "`training.gif`" in note[2] and "`log10_val_loss`" in note[2]
    inf = run_note("diverged", "diverged at epoch 1", float("inf"), float("nan"), 1, 0.9)
    assert "final val_loss inf | val_r2 nan | 1 epochs" in inf


def test_a_sweeps_description_links_its_best_run_and_files():
    from learnai.tracking.notes import sweep_note

    note = sweep_note(
        "7", "P", {"diverged": 1, "converged": 2}, ("lr=0.01", "B", 0.04255, 0.985), ["c.png"]
    ).splitlines()
    assert note == [
        "**Sweep of 3 runs: 2 converged, 1 diverged.**",
        "Best: [lr=0.01](#/experiments/7/runs/B) | val_loss 0.04255 | val_r2 0.985; its params "
        "are this run's `best.*` params, its loss the `best_val_loss` metric.",
        "Compare the runs: [c.png](#/experiments/7/runs/P/artifacts/c.png).",
    ]
    lone = sweep_note("7", "P", {"diverged": 1}, None, [])
    assert lone.splitlines() == [
        "**Sweep of 1 run: 1 diverged.**",
        "No run converged or stalled: no best run.",
    ]


def test_the_runs_view_sorts_best_first_and_shows_the_swept_params():
    from learnai.tracking.links import runs_view, view_key

    view = runs_view(["optimizer.lr", "model.depth"])
    assert view["orderByKey"] == "metrics.`final_val_loss`" and view["orderByAsc"] is True
    assert view["selectedColumns"][:3] == [
        "tags.`outcome`",
        "params.`optimizer.lr`",
        "params.`model.depth`",
    ]
    assert "attributes.`Models`" in view["selectedColumns"]
    text, key = view_key(view)
    assert view_key(runs_view(["optimizer.lr", "model.depth"])) == (text, key)  # stored once
    assert view_key(runs_view(["optimizer.lr"]))[1] != key
    assert key.startswith("learnai-") and len(key) == len("learnai-") + 16


def test_a_single_run_is_named_by_what_it_learns_not_how_it_is_watched():
    keys = ["optimizer.lr", "trainer.progress", "tracking.uri", "trainer.animation.fps"]
    assert naming.naming_keys(keys) == ["optimizer.lr"]
    assert naming.naming_keys(["trainer.epochs", "trainer.num_threads"]) == ["trainer.epochs"]
