"""The plugin's own storage opener and job-side API, in-process: the plugin imports no
learnai module, a fresh storage opened at once from two threads (or two processes'
worth of schema creation) is created once, waits are bounded, passwords are masked."""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import optuna
import pytest
from filelock import FileLock
from helpers.processes import REPO

from hydra_plugins.learnai_optuna_sweeper import storage
from hydra_plugins.learnai_optuna_sweeper.storage import StorageError, mask, open_rdb
from hydra_plugins.learnai_optuna_sweeper.trial import JobTrial

# pyproject ignores DeprecationWarning; the sweeper and its API must not raise any.
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

PLUGIN = REPO / "hydra_plugins" / "learnai_optuna_sweeper"


def _imported(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_no_plugin_module_imports_learnai() -> None:
    """Any Hydra app can use the sweeper: not even a lazy import may need learnai."""
    files = sorted(PLUGIN.rglob("*.py"))
    assert len(files) > 5, files
    found = [
        f"{path.relative_to(REPO)}: {name}"
        for path in files
        for name in _imported(ast.parse(path.read_text(), str(path)))
        if name == "learnai" or name.startswith("learnai.")
    ]
    assert found == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:Pw7x:q/z9@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql+psycopg://u:s3cret@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
        ("postgresql://u:a@b@c@h/db?options=x@y", "postgresql://u:***@h/db?options=x@y"),
        ("postgresql://u@h/db?password=s3cret&x=1", "postgresql://u@h/db?password=***&x=1"),
        ("postgresql://h:5432/db", "postgresql://h:5432/db"),
        ("sqlite:////tmp/a@b/optuna.db", "sqlite:////tmp/a@b/optuna.db"),
        (None, "in memory"),
    ],
)
def test_mask_hides_the_whole_password(url: str | None, shown: str) -> None:
    assert mask(url) == shown


def _open_at_once(url: str, n: int = 2) -> list[object]:
    """``open_rdb(url)`` from ``n`` threads released together; their results or errors."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = open_rdb(url)
        except Exception as exc:  # reported by the test, not lost in the thread
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_two_threads_open_one_fresh_sqlite_storage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'optuna.db'}"  # its folder does not exist yet
    results = _open_at_once(url)
    assert all(isinstance(r, optuna.storages.RDBStorage) for r in results), results
    assert results[0] is results[1] is open_rdb(url), "one storage per url and process"
    study = optuna.create_study(storage=results[0], study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2


def test_a_schema_lock_held_too_long_is_one_line_naming_the_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "optuna.db"
    url = f"sqlite:///{db}"
    monkeypatch.setattr(storage, "SCHEMA_LOCK_TIMEOUT_S", 0.2)
    # another process creating the schema, hung
    with FileLock(f"{db}.lock"), pytest.raises(StorageError) as err:
        open_rdb(url)
    assert isinstance(err.value, ValueError)
    message = str(err.value)
    assert "\n" not in message and message.startswith(url) and "0.2 s" in message
    open_rdb(url)  # released: opens


def test_job_trial_reports_prunes_and_links(tmp_path: Path) -> None:
    rdb = open_rdb(f"sqlite:///{tmp_path / 'optuna.db'}")
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    study = optuna.create_study(storage=rdb, study_name="s", pruner=pruner)
    for value in (1.0, 2.0):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        job = JobTrial(rdb, study, trial.number)
        job.report(value, step=1)
        job.report(99.0, step=1)  # a step is reported once; the second is ignored
        job.set_user_attr("run_link", f"runs/{trial.number}")
        assert job.params == trial.params and job.user_attrs == {"run_link": f"runs/{trial.number}"}
        if value == 1.0:
            assert not job.should_prune()
            study.tell(trial, 1.0)
    assert job.should_prune(), "worse than the median of the finished trial"
    frozen = study.trials[1]
    assert frozen.intermediate_values == {1: 2.0}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", {**storage.PG_CONNECT_ARGS}),
        (
            "postgresql+psycopg://u@h/db?connect_timeout=7&application_name=a",
            {**storage.PG_CONNECT_ARGS, "connect_timeout": "7", "application_name": "a"},
        ),
        ("postgresql+pg8000://u@h/db", {}),  # not libpq: it would refuse libpq's keys
        ("sqlite:///x.db", {}),
    ],
)
def test_postgres_urls_carry_bounded_waits(url: str, expected: dict[str, str]) -> None:
    """libpq takes its timeouts from the URL; the user's own values win."""
    bounded = storage._bounded(url)
    assert bounded.split("?")[0] == url.split("?")[0]
    assert dict(parse_qsl(urlsplit(bounded).query)) == expected


@pytest.mark.postgres
def test_two_threads_open_one_fresh_postgres_storage(pg_database: Callable[[], str]) -> None:
    import psycopg

    uri = pg_database()
    url = uri.replace("postgresql://", "postgresql+psycopg://", 1) + "?connect_timeout=7"
    results = _open_at_once(url)
    assert all(isinstance(r, optuna.storages.RDBStorage) for r in results), results
    study = optuna.create_study(storage=results[0], study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="s", storage=results[1]).trials) == 2
    with psycopg.connect(uri, connect_timeout=5) as conn:
        (held,) = conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON l.database = d.oid "
            "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        ).fetchone()
    assert held == 0, "the schema lock is released once the schema exists"
