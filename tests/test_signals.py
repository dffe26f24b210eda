"""A ``learnai`` command stopped by a signal (a scheduler's cancel, ``kill``: SIGTERM;
Ctrl-C: SIGINT to the terminal's process group) leaves nothing RUNNING: its runs and a
sweep's parent end KILLED, its Optuna trials FAIL.

Each test starts learnai in its own process group, waits until a run is training and
has logged losses, and signals the whole group, as a scheduler or a terminal does.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from helpers.cli import finish, start_learnai
from helpers.polling import wait_for_runs, wait_until
from helpers.stores import (
    all_runs,
    child_runs,
    describe_trials,
    load_study,
    mlflow_client,
    parent_runs,
    tracking_uri,
)

pytestmark = pytest.mark.e2e

EXPERIMENT = "signalled"
LONG_RUN = (
    "data.n_samples=200",
    "trainer.epochs=1000000",  # trains until signalled
    "trainer.progress=false",
    "trainer.device=cpu",
    "trainer.num_threads=1",
    "trainer.animation.enabled=false",
    "tracking.flush_every_s=0.2",  # losses reach the store soon after training starts
    f"tracking.experiment={EXPERIMENT}",
)
KILLED_LINE = "ended KILLED, with its params and the metrics logged so far"


def signal_mid_run(
    cwd: Path, *args: str, sig: int = signal.SIGTERM, children: bool = False
) -> tuple[int, str]:
    """Start learnai, wait until a run (a sweep's child run, with ``children``) is
    RUNNING and has logged training losses, then send ``sig`` to the command's process
    group; return its exit code and output."""
    proc = start_learnai(cwd, *args, *LONG_RUN)
    try:
        runs = wait_for_runs(
            tracking_uri(cwd), EXPERIMENT, children=children, running=True, job=proc
        )
        client = mlflow_client(cwd)
        wait_until(
            lambda: client.get_metric_history(runs[0].info.run_id, "train_loss"),
            "the run's first training losses in the store",
            job=proc,
        )
        os.killpg(proc.pid, sig)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    output = finish(proc, timeout=120)  # killed (and the test failed) if it hangs
    return proc.returncode, output


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 128 + signal.SIGINT)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signalled_run_ends_killed_with_its_metrics_so_far(
    tmp_path: Path, sig: int, code: int
) -> None:
    exit_code, output = signal_mid_run(tmp_path, sig=sig)
    assert exit_code == code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    client = mlflow_client(tmp_path)
    (run,) = all_runs(client, EXPERIMENT)
    assert run.info.status == "KILLED", output[-3000:]
    assert KILLED_LINE in output
    if sig == signal.SIGINT:  # Ctrl-C: one line, no KeyboardInterrupt traceback
        assert output.rstrip().splitlines()[-1] == "learnai: interrupted", output[-3000:]
    assert client.get_metric_history(run.info.run_id, "train_loss"), "losses so far kept"
    assert run.data.params["trainer.epochs"] == "1000000", "params kept"


def assert_sweep_killed(cwd: Path, output: str) -> None:
    """The sweep's parent and every child run ended KILLED; nothing else in the store."""
    client = mlflow_client(cwd)
    (parent,) = parent_runs(client, EXPERIMENT)
    children = child_runs(client, EXPERIMENT, parent.info.run_id)
    assert children, "a child run was started"
    assert len(all_runs(client, EXPERIMENT)) == 1 + len(children), "no unlinked runs"
    statuses = {r.info.run_name: r.info.status for r in children}
    assert set(statuses.values()) == {"KILLED"}, (statuses, output[-3000:])
    assert parent.info.status == "KILLED", output[-3000:]
    assert parent.data.tags["sweep.state"] == "aborted"


def test_sigterm_to_an_optuna_sweep_kills_its_runs_and_fails_its_trial(tmp_path: Path) -> None:
    import optuna

    exit_code, output = signal_mid_run(
        tmp_path,
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.storage=sqlite:///mlruns/optuna.db",
        "hydra.sweeper.study_name=${tracking.experiment}",
        "hydra.sweeper.n_trials=2",
        "optimizer.lr=interval(0.001,0.01)",
        # A report to the study every epoch keeps the job inside a SQLite write nearly
        # all the time: the signal lands in one (it held the write lock for a minute).
        "trainer.report_every=1",
        children=True,
    )
    assert exit_code == 128 + signal.SIGTERM, output[-3000:]
    assert_sweep_killed(tmp_path, output)
    # Every trial asked for ends FAIL, the one whose run was killed among them.
    study = load_study(tmp_path, EXPERIMENT)
    assert study.trials
    states = {t.state for t in study.trials}
    assert states == {optuna.trial.TrialState.FAIL}, describe_trials(study)
    client = mlflow_client(tmp_path)
    (parent,) = parent_runs(client, EXPERIMENT)
    (killed,) = child_runs(client, EXPERIMENT, parent.info.run_id)
    linked = [t for t in study.trials if t.user_attrs.get("mlflow_run_id") == killed.info.run_id]
    assert len(linked) == 1, describe_trials(study)


def test_sigterm_to_a_joblib_sweep_ends_its_workers_runs_killed(tmp_path: Path) -> None:
    """Jobs in joblib's workers have no handler of their own: the signal kills them, and
    the sweep's own process ends the runs they left RUNNING."""
    exit_code, output = signal_mid_run(
        tmp_path,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer.lr=0.01,0.02",
        children=True,
    )
    assert exit_code != 0, output[-3000:]
    assert_sweep_killed(tmp_path, output)
