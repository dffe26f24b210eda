"""What users see in a browser: the MLflow UI and optuna-dashboard, opened in Chromium.

A tiny sweep and a tiny study are recorded; ``mlflow server`` and ``optuna-dashboard``
serve them on loopback ports; headless Chromium (Debian's ``chromium`` package, driven
by playwright; never a browser playwright downloads itself) opens the experiment, the
parent run and a child run. The test asserts on what renders: the runs table the printed
link opens (each run's verdict in its name, best first, the best run's model in the
Models column, no click needed), and the pictures as loaded images with the artifact's
own size; in optuna-dashboard, each trial's note links its MLflow run.
Screenshots are kept in ``test-output/`` (git-ignored).

The browser is Debian's Chromium at /usr/bin/chromium (``.ci/install-browser``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import TINY, TINY_NO_ANIMATION, run_learnai
from helpers.processes import REPO
from helpers.servers import Server
from helpers.stores import child_runs, download, mlflow_client, optuna_storage, parent_runs

from learnai.tracking.links import run_url

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
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The sweep's folder, and the link it printed (on ``mlflow ui``'s default address)."""
    cwd = tmp_path_factory.mktemp("ui_sweep")
    proc = run_learnai(cwd, "-m", "optimizer.lr=0.01,1", *TINY)
    (link,) = re.findall(r"then open (http://127\.0\.0\.1:5000/\S+)", proc.stdout + proc.stderr)
    return cwd, link


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


def row_text(page: Any, run_id: str) -> str:
    """A run's row as shown: the grid draws the pinned name and the other columns as
    two row elements with the same id."""
    rows = page.locator(f"[role=row][row-id='{run_id}']")
    return " | ".join(rows.nth(i).inner_text() for i in range(rows.count()))


def test_the_printed_link_shows_each_runs_verdict_and_the_best_model(
    sweep: tuple[Path, str], page: Any, screenshots: Any, serve: Any, tmp_path: Path
) -> None:
    """The first sight: from the link the sweep printed, without a click, every child's
    verdict in its name, best first, and the best run's model in the Models column."""
    cwd, link = sweep
    client = mlflow_client(cwd)
    (parent,) = parent_runs(client, "learnai")
    children = child_runs(client, "learnai", parent.info.run_id)
    by_name = {c.data.tags["learnai.name"]: c for c in children}
    best, worst = by_name["lr=0.01"], by_name["lr=1"]
    base = serve(Server.mlflow(tmp_path / "server", store=client.tracking_uri)).uri
    page.goto(link.replace("http://127.0.0.1:5000", base))
    names = [best.info.run_name, worst.info.run_name]
    assert names == ["lr=0.01 \u00b7 converged", f"lr=1 \u00b7 diverged at epoch "
                     f"{worst.data.tags['diverged_epoch']}"]  # fmt: skip
    links = [page.get_by_role("link", name=name, exact=True).first for name in names]
    for name_link in links:
        name_link.wait_for()  # shown without unfolding the parent
    assert "/runs" in page.url and "overview" not in page.url
    top, below = (name_link.bounding_box()["y"] for name_link in links)
    assert top < below, "best first"
    page.wait_for_function(  # the Models column of the best run names its model
        "id => Array.from(document.querySelectorAll(`[role=row][row-id='${id}']`))"
        ".some(r => /\\bmodel\\b/.test(r.innerText))",
        arg=best.info.run_id,
    )
    assert "model" not in row_text(page, worst.info.run_id), "a diverged run logs no model"
    assert "final_val_loss" in page.inner_text("body")  # a column, no configuring needed
    close_assistant(page)
    screenshots(page, "mlflow-first-sight")


def test_mlflow_ui_shows_the_runs_pictures_and_descriptions(
    sweep: tuple[Path, str], page: Any, screenshots: Any, serve: Any, tmp_path: Path
) -> None:
    cwd, _ = sweep
    client = mlflow_client(cwd)
    exp = client.get_experiment_by_name("learnai")
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
    (parent,) = parent_runs(client, "learnai")
    children = {
        r.data.tags["learnai.name"]: r for r in child_runs(client, "learnai", parent.info.run_id)
    }
    assert set(children) == {"lr=0.01", "lr=1"}, set(children)
    converged = children["lr=0.01"]
    comparison = download(client, parent.info.run_id, "comparison.png", tmp_path)
    gif = download(client, converged.info.run_id, "training.gif", tmp_path)
    base = serve(Server.mlflow(tmp_path / "server", store=client.tracking_uri)).uri

    # The parent's page: the sweep's description, with a link to the best run.
    page.goto(run_url(base, exp.experiment_id, parent.info.run_id))
    page.get_by_text("Sweep of 2 runs: 1 converged, 1 diverged.").first.wait_for()
    page.get_by_role("link", name="lr=0.01", exact=True).first.wait_for()
    close_assistant(page)
    screenshots(page, "mlflow-parent-description")

    # The parent's comparison figure, rendered from the artifact store.
    page.goto(run_url(base, exp.experiment_id, parent.info.run_id, "artifacts/comparison.png"))
    wait_for_image(page, *image_size(comparison))
    close_assistant(page)
    screenshots(page, "mlflow-parent-comparison")

    # A child's training animation, under the child's name.
    page.goto(run_url(base, exp.experiment_id, converged.info.run_id, "artifacts/training.gif"))
    wait_for_image(page, *image_size(gif))
    page.get_by_text(converged.info.run_name, exact=True).first.wait_for()
    close_assistant(page)
    screenshots(page, "mlflow-child-training-gif")


# --- optuna-dashboard -----------------------------------------------------------------------


def trials(cwd: Path) -> list[Any]:
    import optuna

    return optuna.load_study(study_name="ui_study", storage=optuna_storage(cwd)).trials


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
    # Each trial's note links its MLflow run (a rendered markdown link, not text).
    run_links = page.locator("a[href*='#/experiments/'][href*='/runs/']")
    run_links.first.wait_for()
    hrefs = {run_links.nth(i).get_attribute("href") for i in range(run_links.count())}
    expected = {t.user_attrs["mlflow_run_url"] for t in trials(study)}
    assert hrefs <= expected and hrefs, (hrefs, expected)
    # named as the run is once trained: with its verdict
    assert re.search(r"#0 lr=\S+ \u00b7 (converged|stalled|pruned)", page.inner_text("body"))
    screenshots(page, "optuna-dashboard-trials")
