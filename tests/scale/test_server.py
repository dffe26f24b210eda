"""A team's tracking server (``python -m learnai.commands.server``): PostgreSQL runs,
served artifacts. A sweep logs to it over HTTP only, and a job on "another machine"
(launch directory and the server's disk hidden) still logs its run and its artifacts.

Refused arguments are checked in-process (``main``'s exit code and its one line); the
rest starts real servers (``e2e``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import (
    TIMEOUT_S,
    TINY,
    TINY_NO_ANIMATION,
    check_exit,
    learnai_env,
    run_learnai,
    run_python,
)
from helpers.processes import as_another_machine
from helpers.servers import Server
from helpers.stores import PARENT_TAG, all_runs


def _download(uri: str, run_id: str, dest: Path) -> set[str]:
    """The run's artifact files, fetched through the server (mlflow-artifacts:/ proxy)."""
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="", dst_path=str(dest), tracking_uri=uri
    )
    return {str(p.relative_to(local)) for p in Path(local).rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--db", "http://x:1"], "--db: http://x:1 is not a database URI"),
        (["--db", "sqlite:///x.db", "--port", "70000"], "--port: 70000 is not a port"),
    ],
)
def test_bad_arguments_are_one_line_before_any_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], line: str
) -> None:
    from learnai.commands.server import main

    try:
        code = main([*args, "--artifacts", str(tmp_path / "a")])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    assert code == 2
    assert line in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no store, no artifacts folder


@pytest.mark.e2e
def test_basic_auth_needs_its_admin_password_from_the_environment(tmp_path: Path) -> None:
    env = learnai_env()
    for key in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_AUTH_CONFIG_PATH"):
        env.pop(key, None)
    proc = run_python(
        tmp_path,
        "-m", "learnai.commands.server", "--db", f"sqlite:///{tmp_path}/r.db",
        "--artifacts", str(tmp_path / "a"), "--app-name", "basic-auth",
        env=env,
    )  # fmt: skip
    check_exit(proc, 2, "learnai.commands.server --app-name basic-auth")
    assert "needs MLFLOW_AUTH_ADMIN_PASSWORD in the environment" in proc.stderr
    assert list(tmp_path.iterdir()) == [], "refused before any store or folder exists"


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.root
def test_a_sweep_logs_runs_and_artifacts_through_the_server_only(
    tmp_path: Path, pg_database
) -> None:
    server = Server.learnai(tmp_path / "server", pg_database()).start()
    try:
        _through_the_server_only(tmp_path, server)
    finally:
        server.kill()


def _through_the_server_only(tmp_path: Path, server: Server) -> None:
    from mlflow import MlflowClient

    launch = tmp_path / "launch"
    launch.mkdir()
    run_learnai(
        launch,
        "-m",
        "optimizer.lr=0.01,1",
        f"tracking.uri={server.uri}",
        "tracking.experiment=team",
        *TINY,
    )
    assert not (launch / "mlruns").exists(), "a local store was created beside the server"

    client = MlflowClient(tracking_uri=server.uri)
    runs = all_runs(client, "team")
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
            *TINY_NO_ANIMATION,
            f"hydra.run.dir={elsewhere}/run",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=learnai_env(),
    )
    check_exit(proc, 0, "learnai as another machine")
    (remote,) = all_runs(client, "remote")
    assert remote.info.status == "FINISHED"
    assert remote.data.metrics, "the remote job logged no metrics"
    assert _download(server.uri, remote.info.run_id, tmp_path / "dl_remote")
    assert not (launch / "mlruns").exists()


@pytest.mark.e2e
def test_basic_auth_server_takes_credentials_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--app-name basic-auth``: the admin's password only in the server's environment,
    a run's credentials only in the client's; none on a command line or in a URL."""
    from mlflow import MlflowClient

    password = "s3cret-Adm1n!x"
    monkeypatch.delenv("MLFLOW_AUTH_CONFIG_PATH", raising=False)
    env = {"MLFLOW_AUTH_ADMIN_PASSWORD": password, "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only"}
    srv = Server.learnai(
        tmp_path / "srv", f"sqlite:///{tmp_path}/runs.db", "--app-name", "basic-auth", env=env
    ).start()
    try:
        assert password not in (srv.root / "mlflow-auth.ini").read_text()
        launch = tmp_path / "launch"
        launch.mkdir()
        client_env = {**learnai_env(), "MLFLOW_TRACKING_USERNAME": "admin"}
        args = (f"tracking.uri={srv.uri}", *TINY_NO_ANIMATION)
        denied = run_learnai(
            launch, *args, expect=None, env={**client_env, "MLFLOW_TRACKING_PASSWORD": "wrong"}
        )
        assert denied.returncode != 0
        assert "401" in denied.stderr or "nauthori" in denied.stderr, denied.stderr[-3000:]
        ok = run_learnai(launch, *args, env={**client_env, "MLFLOW_TRACKING_PASSWORD": password})
        assert password not in ok.stdout + ok.stderr
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        (run,) = all_runs(MlflowClient(tracking_uri=srv.uri), "learnai")
        assert run.info.status == "FINISHED"
    finally:
        srv.kill()
