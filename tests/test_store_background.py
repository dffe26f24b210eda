"""A new SQLite store's tables are created by another process while learnai goes on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from learnai import stores


def _wait_for(path: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was never created"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_new_store_is_created_in_the_background(tmp_path: Path) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert stores.prepare_in_background(uri)
    assert not stores.prepare_in_background(uri)  # one process per store
    _wait_for(db)  # made by that process: this one has not opened the store
    client = stores.open_store(uri)  # waits for the schema, then opens it
    assert client.get_experiment_by_name("Default") is not None
    assert not stores.prepare_in_background(uri)  # it exists now


def test_existing_stores_and_servers_need_nothing_created(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.touch()
    assert not stores.prepare_in_background(f"sqlite:///{db}")
    assert not stores.prepare_in_background("http://127.0.0.1:5000")
    assert not stores.prepare_in_background("postgresql+psycopg://u@127.0.0.1/test")


@pytest.mark.slow
def test_a_store_the_background_cannot_create_is_reported_by_open_store(tmp_path: Path) -> None:
    """The background process fails silently; open_store says what is wrong, once."""
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")  # even root cannot make a folder inside a file
    uri = f"sqlite:///{not_a_folder / 'mlruns' / 'mlflow.db'}"
    assert stores.prepare_in_background(uri)
    with pytest.raises(stores.StoreError, match="file"):
        stores.open_store(uri)
