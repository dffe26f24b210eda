"""What users see in a browser: the MLflow UI and optuna-dashboard, opened in Chromium.

A tiny sweep and a tiny study are recorded; ``mlflow server`` and ``optuna-dashboard``
serve them on loopback ports; headless Chromium (Debian's ``chromium`` package, driven
by playwright; never a browser playwright downloads itself) opens the experiment, the
parent run and a child run. The test asserts on what renders: the nested runs with
their names, and the pictures as loaded images with the artifact's own size.
Screenshots are kept in ``test-output/`` (git-ignored).

No Chromium at /usr/bin/chromium is a failure, not a skip: run ``.ci/install-browser``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sweep_helpers import TINY, learnai_env, optuna_storage, run_learnai, tracking_uri

from learnai.ui_links import experiment_url, run_url

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_S = 180  # mlflow server imports a lot; on a busy 2-core machine ~30-60 s
PAGE_WAIT_MS = 120_000
VIEWPORT = {"width": 1280, "height": 800}


# --- servers and browser ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(command: list[str], ready_url: str, log: Path) -> Iterator[None]:
    """Run a server in its own process group until ``ready_url`` answers; stop it after."""
    env = learnai_env()
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{command[0]} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(ready_url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{ready_url} not up after {SERVER_START_S} s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(1)
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the workers it started
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run .ci/install-browser (apt-get install -y chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(PAGE_WAIT_MS)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``save(page, name)``: a screenshot in the test's tmp dir, copied to test-output/."""
    folder = tmp_path_factory.mktemp("screenshots")
    OUTPUT.mkdir(exist_ok=True)

    def save(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path))
        shutil.copy(path, OUTPUT / path.name)
        return path

    return save


def close_assistant(page: Any) -> None:
    """MLflow 3.17 opens an "Assistant" side panel; close it so screenshots show the runs."""
    close = page.locator("button[aria-label='Close']")
    if close.count():
        close.first.click()
        page.wait_for_timeout(300)


def wait_for_image(page: Any, width: int, height: int) -> None:
    """Wait until the page shows a loaded image of exactly ``width`` x ``height``."""
    page.wait_for_function(
        "([w, h]) => Array.from(document.images).some("
        "i => i.complete && i.naturalWidth === w && i.naturalHeight === h)",
        arg=[width, height],
    )


def image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


# --- recorded data ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("ui_sweep")
    run_learnai(cwd, "-m", "optimizer.lr=0.01,1", *TINY)
    return cwd


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("ui_study")
    run_learnai(
        cwd,
        "-m",
        "hydra/sweeper=optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.study_name=ui_study",
        "hydra.sweeper.storage=sqlite:///mlruns/optuna.db",  # the dashboard reads it after
        "optimizer.lr=tag(log, interval(1e-3, 1e-1))",
        *TINY,
        "trainer.animation.enabled=false",
    )
    return cwd


# --- the MLflow UI ------------------------------------------------------------------------


def test_mlflow_ui_shows_nested_named_runs_and_their_pictures(
    sweep: Path, page: Any, screenshots: Any, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    uri = tracking_uri(sweep)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("learnai")
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {r.info.run_name: r for r in runs if r is not parent}
    assert set(children) == {"lr=0.01", "lr=1"}, set(children)
    converged = children["lr=0.01"]
    comparison = Path(
        client.download_artifacts(parent.info.run_id, "comparison.png", str(tmp_path))
    )
    gif = Path(client.download_artifacts(converged.info.run_id, "training.gif", str(tmp_path)))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with serve(server, f"{base}/health", tmp_path / "mlflow-server.log"):
        # The experiment opens on its runs table (not the GenAI overview), parent on top.
        page.goto(experiment_url(base, exp.experiment_id))
        parent_name = page.get_by_role("link", name=parent.info.run_name, exact=True).first
        parent_name.wait_for()
        assert "/runs" in page.url and "overview" not in page.url
        child_rows = {
            name: page.locator(f"[role=row][row-id='{child.info.run_id}']")
            for name, child in children.items()
        }
        # Children are folded under the parent: hidden until its + is clicked, then shown
        # below it and indented.
        assert all(row.count() == 0 for row in child_rows.values())
        parent_row = page.locator(f"[role=row][row-id='{parent.info.run_id}']").first
        parent_row.locator("button").first.click()
        top = parent_name.bounding_box()
        for name in children:
            link = page.get_by_role("link", name=name, exact=True).first
            link.wait_for()
            box = link.bounding_box()
            assert box["y"] > top["y"] and box["x"] > top["x"] + 10, (name, box, top)
        close_assistant(page)
        screenshots(page, "mlflow-experiment")

        # The parent's comparison figure, rendered from the artifact store.
        page.goto(run_url(base, exp.experiment_id, parent.info.run_id, "artifacts/comparison.png"))
        wait_for_image(page, *image_size(comparison))
        close_assistant(page)
        screenshots(page, "mlflow-parent-comparison")

        # A child's training animation, under the child's name.
        page.goto(run_url(base, exp.experiment_id, converged.info.run_id, "artifacts/training.gif"))
        wait_for_image(page, *image_size(gif))
        page.get_by_text("lr=0.01", exact=True).first.wait_for()
        close_assistant(page)
        screenshots(page, "mlflow-child-training-gif")


# --- optuna-dashboard ---------------------------------------------------------------------


def test_optuna_dashboard_shows_the_study(
    study: Path, page: Any, screenshots: Any, tmp_path: Path
) -> None:
    script = Path(sys.executable).parent / "optuna-dashboard"
    if not script.exists():
        pytest.fail("optuna-dashboard is not installed: pip install -e '.[dashboard]'")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(script), optuna_storage(study), "--host", "127.0.0.1", "--port", str(port)]
    with serve(command, f"{base}/dashboard", tmp_path / "optuna-dashboard.log"):
        page.goto(f"{base}/dashboard")
        page.get_by_text("ui_study").first.click()
        page.wait_for_url("**/dashboard/studies/*")
        # The study page lists its trials; both finished.
        page.get_by_text("optimizer.lr").first.wait_for()
        page.wait_for_timeout(1000)
        text = page.inner_text("body")
        assert "ui_study" in text
        screenshots(page, "optuna-dashboard-study")
        page.goto(page.url.rstrip("/") + "/trials")
        page.get_by_text("Trial 1").first.wait_for()
        assert "Trial 0" in page.inner_text("body")
        screenshots(page, "optuna-dashboard-trials")
