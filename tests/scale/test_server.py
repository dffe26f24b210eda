"""A team's tracking server (``python -m learnai.server``): PostgreSQL runs, served
artifacts. A sweep logs to it over HTTP only, and a job on "another machine" (launch
directory and the server's disk hidden) still logs its run and its artifacts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from scale_helpers import TINY, as_another_machine
from sweep_helpers import PARENT_TAG, learnai_env, run_learnai


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _download(uri: str, run_id: str, dest: Path) -> set[str]:
    """The run's artifact files, fetched through the server (mlflow-artifacts:/ proxy)."""
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="", dst_path=str(dest), tracking_uri=uri
    )
    return {str(p.relative_to(local)) for p in Path(local).rglob("*") if p.is_file()}


def test_bad_arguments_are_one_line_before_any_server(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "learnai.server",
            "--db",
            "http://x:1",
            "--artifacts",
            str(tmp_path / "a"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=learnai_env(),
    )
    assert proc.returncode == 2
    assert "--db: http://x:1 is not a database URI" in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "learnai.server",
            "--db",
            "sqlite:///x.db",
            "--artifacts",
            str(tmp_path / "a"),
            "--port",
            "70000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=learnai_env(),
    )
    assert proc.returncode == 2
    assert "--port: 70000 is not a port" in proc.stderr


def test_basic_auth_needs_its_admin_password_from_the_environment(tmp_path: Path) -> None:
    env = learnai_env()
    for key in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_AUTH_CONFIG_PATH"):
        env.pop(key, None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "learnai.server",
            "--db",
            f"sqlite:///{tmp_path}/r.db",
            "--artifacts",
            str(tmp_path / "a"),
            "--app-name",
            "basic-auth",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2, proc.stderr
    assert "needs MLFLOW_AUTH_ADMIN_PASSWORD in the environment" in proc.stderr


@pytest.mark.slow
def test_a_sweep_logs_runs_and_artifacts_through_the_server_only(tmp_path: Path, server) -> None:
    launch = tmp_path / "launch"
    launch.mkdir()
    run_learnai(
        launch,
        "-m",
        "optimizer.lr=0.01,1",
        f"tracking.uri={server.uri}",
        "tracking.experiment=team",
        *TINY,
        "trainer.animation.enabled=true",
    )
    assert not (launch / "mlruns").exists(), "a local store was created beside the server"

    client = _client(server.uri)
    exp = client.get_experiment_by_name("team")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    children = [r for r in runs if PARENT_TAG in r.data.tags]
    assert len(parents) == 1 and len(children) == 2, [r.info.run_name for r in runs]
    assert {c.data.tags[PARENT_TAG] for c in children} == {parents[0].info.run_id}
    assert {r.info.status for r in runs} == {"FINISHED"}
    # Served artifacts: the run records a proxy URI, the files live on the server's disk
    # and come back over HTTP.
    assert all(r.info.artifact_uri.startswith("mlflow-artifacts:") for r in runs)
    child_files = _download(server.uri, children[0].info.run_id, tmp_path / "dl_child")
    assert "config.yaml" in child_files or any(f.endswith(".yaml") for f in child_files)
    parent_files = _download(server.uri, parents[0].info.run_id, tmp_path / "dl_parent")
    assert "children.csv" in parent_files, parent_files
    on_disk = {p.name for p in (server.root / "artifacts").rglob("*") if p.is_file()}
    assert "children.csv" in on_disk

    # A job on "another machine": neither the launch directory nor the server's disk
    # is there; it still logs its run and artifacts.
    elsewhere = tmp_path / "elsewhere"
    proc = subprocess.run(
        [
            *as_another_machine([launch, server.root]),
            sys.executable,
            "-m",
            "learnai",
            f"tracking.uri={server.uri}",
            "tracking.experiment=remote",
            *TINY,
            f"hydra.run.dir={elsewhere}/run",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=learnai_env(),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (remote,) = client.search_runs([client.get_experiment_by_name("remote").experiment_id])
    assert remote.info.status == "FINISHED"
    assert remote.data.metrics, "the remote job logged no metrics"
    assert _download(server.uri, remote.info.run_id, tmp_path / "dl_remote")
    assert not (launch / "mlruns").exists()


@pytest.mark.slow
def test_basic_auth_server_takes_credentials_from_the_environment(
    tmp_path: Path, monkeypatch
) -> None:
    """``--app-name basic-auth``: the admin's password only in the server's environment,
    a run's credentials only in the client's; none on a command line or in a URL."""
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs mlflow[auth]")
    from scale_helpers import Server

    password = "s3cret-Adm1n!x"
    env = {
        **learnai_env(),
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-key",
    }
    env.pop("MLFLOW_AUTH_CONFIG_PATH", None)
    srv = Server(
        tmp_path / "srv", f"sqlite:///{tmp_path}/runs.db", "--app-name", "basic-auth", env=env
    ).start()
    try:
        assert password not in (srv.root / "mlflow-auth.ini").read_text()
        launch = tmp_path / "launch"
        launch.mkdir()
        args = [sys.executable, "-m", "learnai", f"tracking.uri={srv.uri}", *TINY]
        client_env = {**learnai_env(), "MLFLOW_TRACKING_USERNAME": "admin"}
        denied = subprocess.run(
            args,
            cwd=launch,
            capture_output=True,
            text=True,
            timeout=300,
            env={**client_env, "MLFLOW_TRACKING_PASSWORD": "wrong"},
        )
        assert denied.returncode != 0
        assert "401" in denied.stderr or "nauthori" in denied.stderr, denied.stderr[-3000:]
        ok = subprocess.run(
            args,
            cwd=launch,
            capture_output=True,
            text=True,
            timeout=300,
            env={**client_env, "MLFLOW_TRACKING_PASSWORD": password},
        )
        assert ok.returncode == 0, ok.stderr[-3000:]
        assert password not in ok.stdout + ok.stderr
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        client = _client(srv.uri)
        (run,) = client.search_runs([client.get_experiment_by_name("learnai").experiment_id])
        assert run.info.status == "FINISHED"
    finally:
        srv.stop()
