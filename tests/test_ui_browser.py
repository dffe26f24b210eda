"""What users see in a browser: the MLflow UI and optuna-dashboard, opened in Chromium.

A tiny sweep and a tiny study are recorded; ``mlflow server`` and ``optuna-dashboard``
serve them on loopback ports; headless Chromium (Debian's ``chromium`` package, driven
by playwright; never a browser playwright downloads itself) opens the experiment, the
parent run and a child run. The test asserts on what renders: the nested runs with
their names, and the pictures as loaded images with the artifact's own size.
Screenshots are kept in ``test-output/`` (git-ignored).

The browser is Debian's Chromium at /usr/bin/chromium (``.ci/install-browser``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import TINY, TINY_NO_ANIMATION, run_learnai
from helpers.processes import REPO
from helpers.servers import Server
from helpers.stores import child_runs, download, mlflow_client, optuna_storage, parent_runs

from learnai.tracking.links import experiment_url, run_url

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

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
PAGE_WAIT_MS = 120_000
VIEWPORT = {"width": 1280, "height": 800}


# --- browser --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by playwright (never a browser it downloads)."""
    from playwright.sync_api import sync_playwright

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


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """``serve(server)``: start a :class:`Server` (its log in the test's folder); every
    server started is stopped after the test."""
    started: list[Server] = []

    def start(server: Server) -> Server:
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def close_assistant(page: Any) -> None:
    """MLflow 3.17 opens an "Assistant" side panel; close it so screenshots show the runs."""
    close = page.locator("button[aria-label='Close']")
    if close.count():
        close.first.click()
        close.first.wait_for(state="detached")


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


# --- recorded data --------------------------------------------------------------------------


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
        *TINY_NO_ANIMATION,
    )
    return cwd


# --- the MLflow UI --------------------------------------------------------------------------


def test_mlflow_ui_shows_nested_named_runs_and_their_pictures(
    sweep: Path, page: Any, screenshots: Any, serve: Any, tmp_path: Path
) -> None:
    client = mlflow_client(sweep)
    exp = client.get_experiment_by_name("learnai")
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
    (parent,) = parent_runs(client, "learnai")
    children = {r.info.run_name: r for r in child_runs(client, "learnai", parent.info.run_id)}
    assert set(children) == {"lr=0.01", "lr=1"}, set(children)
    converged = children["lr=0.01"]
    comparison = download(client, parent.info.run_id, "comparison.png", tmp_path)
    gif = download(client, converged.info.run_id, "training.gif", tmp_path)

    store = client.tracking_uri
    base = serve(Server.mlflow(tmp_path / "server", store=store)).uri
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


# --- optuna-dashboard -----------------------------------------------------------------------


def test_optuna_dashboard_shows_the_study(
    study: Path, page: Any, screenshots: Any, serve: Any, tmp_path: Path
) -> None:
    base = serve(Server.optuna_dashboard(tmp_path / "dashboard", optuna_storage(study))).uri
    page.goto(f"{base}/dashboard")
    page.get_by_text("ui_study").first.click()
    page.wait_for_url("**/dashboard/studies/*")
    # The study page names the study and the searched param.
    page.get_by_text("optimizer.lr").first.wait_for()
    assert "ui_study" in page.inner_text("body")
    screenshots(page, "optuna-dashboard-study")
    # Its trials page lists both trials.
    page.goto(page.url.rstrip("/") + "/trials")
    page.get_by_text("2 Trials", exact=True).wait_for()
    assert "Trial 0" in page.inner_text("body") and "Trial 1" in page.inner_text("body")
    screenshots(page, "optuna-dashboard-trials")
