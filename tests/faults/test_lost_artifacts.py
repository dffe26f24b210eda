"""Artifacts no one would find: jobs that may run on other machines (submitit, Ray), a
database tracking URI without a server, and no ``tracking.artifact_location``. MLflow
then writes each job's files to a folder on the job's own disk (the experiment's default
location, under the directory that created it), and the runs ended FINISHED with none
of their files where anyone looks. The sweep is refused before anything exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import TINY_NO_ANIMATION, error_line, run_learnai

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _tables_with_rows(uri: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(uri) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema='public'"
            )
        ]
        counts = {n: conn.execute(f'select count(*) from "{n}"').fetchone()[0] for n in names}
    return {n: c for n, c in counts.items() if c and n != "alembic_version"}


@pytest.mark.parametrize("launcher", ["submitit_local", "submitit_slurm"])
def test_remote_jobs_with_a_database_and_no_artifact_location_are_refused(
    tmp_path: Path, pg_database, launcher: str
) -> None:
    tracking = pg_database()
    proc = run_learnai(
        tmp_path,
        "-m",
        "optimizer.lr=0.01,0.1",
        f"hydra/launcher={launcher}",
        f"tracking.uri={tracking}",
        *TINY_NO_ANIMATION,
        expect=2,
    )
    line = error_line(proc)
    assert line.startswith("learnai: invalid value for tracking.artifact_location"), line
    assert f"hydra/launcher={launcher}" in line and "tracking server" in line, line
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no multirun/, no mlruns/
    assert _tables_with_rows(tracking) == {}  # no experiment, no parent run


def test_a_shared_artifact_location_is_accepted(tmp_path: Path, pg_database) -> None:
    """The same sweep with ``tracking.artifact_location`` runs, each job's files there."""
    from helpers.stores import all_runs, artifact_names
    from mlflow import MlflowClient

    tracking = pg_database()
    shared = tmp_path / "shared"
    launch = tmp_path / "launch"
    launch.mkdir()
    run_learnai(
        launch,
        "-m",
        "optimizer.lr=0.01",
        "hydra/launcher=submitit_local",
        "hydra.launcher.cpus_per_task=1",
        f"tracking.uri={tracking}",
        f"tracking.artifact_location={shared.as_uri()}",
        *TINY_NO_ANIMATION,
    )
    client = MlflowClient(tracking_uri=tracking)
    runs = all_runs(client, "learnai")
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 2
    for run in runs:
        assert run.info.artifact_uri.startswith(shared.as_uri()), run.info.artifact_uri
        assert artifact_names(client, run.info.run_id), run.info.run_name


def test_a_job_that_cannot_see_the_artifact_folder_is_refused(tmp_path: Path, pg_database) -> None:
    """A sweep's job on a machine that does not mount the shared artifact folder (the
    sweep made it where it was launched) would write its files to a folder of its own
    disk: its run is refused before it exists, naming the folder and the host."""
    import subprocess
    import sys

    from helpers.cli import TINY, learnai_env
    from helpers.processes import as_another_machine
    from mlflow import MlflowClient

    tracking = pg_database()
    shared = tmp_path / "mounts" / "shared"
    shared.mkdir(parents=True)  # where the sweep was launched, as its command makes it
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.create_experiment("remote", artifact_location=shared.as_uri())
    parent = client.create_run(experiment, run_name="sweep").info.run_id
    launch = tmp_path / "job"
    launch.mkdir()
    job = (
        "import sys; from learnai.cli import _entry; "
        f"sys.argv = ['learnai', '-m', 'optimizer.lr=0.01', 'tracking.uri={tracking}', "
        f"'tracking.experiment=remote', 'tracking.parent_run_id={parent}', "
        f"'tracking.artifact_location={shared.as_uri()}', "
        + ", ".join(repr(a) for a in TINY)
        + "]; _entry()"
    )
    proc = subprocess.run(
        [*as_another_machine([tmp_path / "mounts"]), sys.executable, "-c", job],
        cwd=launch,
        env=learnai_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert f"tracking.artifact_location: {shared} does not exist on this machine" in (
        proc.stderr
    ), proc.stderr[-2000:]
    runs = client.search_runs([experiment])
    assert [r.info.run_id for r in runs] == [parent], "the job made no run of its own"
