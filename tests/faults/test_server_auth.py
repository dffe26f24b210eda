"""A basic-auth tracking server (learnai's own, ``--app-name basic-auth``): a user who
may only read is refused in one line before any run exists, and the admin's password
typed into the URL appears in no byte the command prints or writes (MLflow prints its
tracking URI in "View run ... at:" lines: the command hands MLflow the credentials
through its environment variables instead of the URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers.cli import TINY_NO_ANIMATION, error_line, learnai_env, run_learnai
from helpers.servers import Server

pytestmark = pytest.mark.e2e
ADMIN_PW = "Adm1n:pw@long/9"  # ':' '@' '/' as a generated password may hold
READER_PW = "Re4der-pw-long-9"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server, a user ``reader`` with the default READ permission, and experiment
    ``shared`` made by the admin."""
    root = tmp_path_factory.mktemp("auth")
    env = {
        "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PW,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only",
    }
    saved = os.environ.pop("MLFLOW_AUTH_CONFIG_PATH", None)  # the server writes its own
    srv = Server.learnai(
        root / "srv", f"sqlite:///{root}/runs.db", "--app-name", "basic-auth", env=env
    )
    srv.start()
    try:
        admin = ("admin", ADMIN_PW)
        for path, body in (
            ("users/create", {"username": "reader", "password": READER_PW}),
            ("experiments/create", {"name": "shared"}),
        ):
            reply = requests.post(f"{srv.uri}/api/2.0/mlflow/{path}", json=body, auth=admin)
            assert reply.status_code == 200, reply.text
        yield srv
    finally:
        srv.kill()
        if saved is not None:
            os.environ["MLFLOW_AUTH_CONFIG_PATH"] = saved


def _runs(server: Server, experiment: str) -> list[dict]:
    reply = requests.post(
        f"{server.uri}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [_experiment_id(server, experiment)], "max_results": 100},
        auth=("admin", ADMIN_PW),
    )
    return reply.json().get("runs", [])


def _experiment_id(server: Server, name: str) -> str:
    reply = requests.get(
        f"{server.uri}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": name},
        auth=("admin", ADMIN_PW),
    )
    return reply.json()["experiment"]["experiment_id"]


def _as_reader() -> dict[str, str]:
    return {
        **learnai_env(),
        "MLFLOW_TRACKING_USERNAME": "reader",
        "MLFLOW_TRACKING_PASSWORD": READER_PW,
    }


@pytest.mark.parametrize("sweep", [False, True], ids=["run", "sweep"])
def test_a_read_only_user_is_refused_in_one_line_before_any_run(
    tmp_path: Path, server: Server, sweep: bool
) -> None:
    """Also the real case of "the parent run cannot be created" (a sweep)."""
    args = ["-m", "optimizer.lr=0.01,0.1"] if sweep else []
    proc = run_learnai(
        tmp_path,
        *args,
        f"tracking.uri={server.uri}",
        "tracking.experiment=shared",
        *TINY_NO_ANIMATION,
        expect=2,
        env=_as_reader(),
    )
    line = error_line(proc)
    assert "does not let 'reader' write runs in experiment 'shared'" in line, proc.stderr
    assert "EDIT permission" in line
    assert "Traceback" not in proc.stderr and "WARNING" not in proc.stderr, proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.strip()] == [line]
    assert _runs(server, "shared") == []
    assert not (tmp_path / "multirun").exists()


def test_a_password_typed_into_the_server_url_is_nowhere(tmp_path: Path, server: Server) -> None:
    from urllib.parse import quote

    url = server.uri.replace("http://", f"http://admin:{quote(ADMIN_PW, safe='')}@")
    proc = run_learnai(
        tmp_path, f"tracking.uri={url}", "tracking.experiment=typed", *TINY_NO_ANIMATION
    )
    printed = proc.stdout + proc.stderr
    assert "View run" in printed and f"at: {server.uri}/#/experiments/" in printed, printed
    assert "Adm1n" not in printed and "Adm1n%3Apw" not in printed
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"Adm1n" not in path.read_bytes(), path
    (run,) = _runs(server, "typed")
    assert run["info"]["status"] == "FINISHED"
    assert "Adm1n" not in repr(run)
