"""Ctrl-C or SIGTERM while a stacked group trains ends every member's run KILLED (with
its params and the metrics logged so far) and the sweep's parent KILLED: nothing stays
RUNNING, as with one job at a time."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from helpers.cli import finish, start_learnai
from helpers.polling import wait_for_runs, wait_until
from helpers.stores import all_runs, mlflow_client, parent_runs, tracking_uri

pytestmark = pytest.mark.e2e

EXPERIMENT = "stacked_signalled"
LONG_GROUP = (
    "-m",
    "hydra/launcher=vectorized",
    "optimizer.lr=0.001,0.002,0.003",
    "data.n_samples=200",
    "trainer.epochs=1000000",  # trains until signalled
    "trainer.progress=false",
    "trainer.device=cpu",
    "trainer.num_threads=1",
    "trainer.animation.enabled=false",
    "tracking.flush_every_s=0.1",  # x 3 members: losses reach the store soon
    f"tracking.experiment={EXPERIMENT}",
)


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 128 + signal.SIGINT)],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_signalled_group_ends_every_member_killed(tmp_path: Path, sig: int, code: int) -> None:
    proc = start_learnai(tmp_path, *LONG_GROUP)
    try:
        wait_for_runs(tracking_uri(tmp_path), EXPERIMENT, 3, running=True, job=proc)
        client = mlflow_client(tmp_path)
        wait_until(
            lambda: wait_for_runs(tracking_uri(tmp_path), EXPERIMENT, 3, training=True),
            "every member's first losses in the store",
            job=proc,
        )
        os.killpg(proc.pid, sig)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    output = finish(proc, timeout=120)
    assert proc.returncode == code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    # each member ended by the group itself, none left for the sweep's clean-up
    assert output.count("ended KILLED, with its params and the metrics logged so far") == 3
    assert "were still RUNNING" not in output, output[-3000:]
    runs = all_runs(client, EXPERIMENT)
    (parent,) = parent_runs(client, EXPERIMENT)
    assert len(runs) == 4
    assert {r.info.status for r in runs} == {"KILLED"}, [
        (r.info.run_name, r.info.status) for r in runs
    ]
    assert parent.data.tags["sweep.state"] == "aborted"
    for run in runs:
        if run.info.run_id != parent.info.run_id:
            assert run.data.params["optimizer.lr"] in {"0.001", "0.002", "0.003"}
            assert client.get_metric_history(run.info.run_id, "train_loss")
