"""Fault 1 (part): a password in a store URI never reaches what learnai shows or records.

Passwords with '/', '@' and ':' in them, typed plainly, percent-encoded, or in the
escaped form Hydra writes into the overrides of sweep jobs (``user\\:pw@``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.cli import TINY, error_line, run_learnai

from learnai.secrets import mask_mapping, mask_override, mask_secrets, move_secrets

PASSWORDS = ["plain", "p/ss", "p@ss", "p:ss", "a/b@c:d", "x@y@z"]


@pytest.mark.parametrize("pw", PASSWORDS)
@pytest.mark.parametrize(
    "template",
    [
        "postgresql://alice:{pw}@db.example:5432/runs",
        "postgresql+psycopg2://alice\\:{pw}@db.example/runs",  # Hydra's escaped ':'
        "mlflow at http://alice:{pw}@tracking:5000 failed",
        "host=db password={pw} dbname=runs",
    ],
)
def test_mask_secrets_hides_every_password(template: str, pw: str) -> None:
    text = template.format(pw=pw)
    masked = mask_secrets(text)
    assert pw not in masked.replace("password", "")
    assert "***" in masked


def test_mask_secrets_keeps_the_rest_readable() -> None:
    assert mask_secrets("postgresql://alice:p@ss@db:5432/runs") == (
        "postgresql://alice:***@db:5432/runs"
    )
    both = mask_secrets("postgresql://a:x@h/d,postgresql://b:y@h2/e")
    assert both == "postgresql://a:***@h/d,postgresql://b:***@h2/e"
    for plain in ("sqlite:///mlruns/mlflow.db", "http://localhost:5000", "lr=0.1"):
        assert mask_secrets(plain) == plain


@pytest.mark.parametrize("pw", PASSWORDS)
@pytest.mark.parametrize(
    "override",
    [
        "tracking.uri=postgresql://alice\\:{pw}@db/runs",  # as a sweeper passes it on
        "tracking.uri='postgresql://alice:{pw}@db/runs'",
        "+hydra.sweeper.storage='postgresql://alice:{pw}@db/studies'",
        "tracking.uri=choice('postgresql://alice:{pw}@db/a', 'sqlite:///b.db')",
    ],
)
def test_mask_override_masks_the_parsed_value(override: str, pw: str) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    masked = mask_override(override.format(pw=pw))
    assert pw not in masked.replace("alice", "")
    # What comes back is still an override Hydra parses, with the same key.
    parsed = OverridesParser.create().parse_override(masked)
    assert parsed.key_or_group in ("tracking.uri", "hydra.sweeper.storage")
    assert "alice:***@db" in str(parsed.value())


def test_mask_override_leaves_plain_overrides_alone() -> None:
    for override in ("optimizer.lr=0.1,1", "model=linear", "~trainer.seed", "a.b=[1,2]"):
        assert mask_override(override) == override
    assert mask_override("+db.password=hunter2") == "+db.password=***"


def test_mask_mapping_masks_nested_values_and_secret_keys() -> None:
    tree = {
        "tracking": {"uri": "postgresql://u:p/w@h/db", "experiment": "x"},
        "db": {"password": "hunter2", "hosts": ["mysql://a:b@c/d"]},
    }
    masked = mask_mapping(tree)
    assert masked["tracking"] == {"uri": "postgresql://u:***@h/db", "experiment": "x"}
    assert masked["db"] == {"password": "***", "hosts": ["mysql://a:***@c/d"]}
    assert tree["db"]["password"] == "hunter2"  # a copy, the input is untouched


def test_learnais_own_log_records_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    """learnai's log records are masked where they are made (a filter on the
    ``learnai`` logger), whatever handler prints them; other loggers are left alone."""
    import logging

    import learnai  # noqa: F401  (installs the filter)

    caplog.set_level(logging.INFO)
    uri = "postgresql://alice:p/w@db/runs"
    logging.getLogger("learnai").info("store %s", uri)
    logging.getLogger("someone.else").info("store %s", uri)
    assert caplog.messages == ["store postgresql://alice:***@db/runs", f"store {uri}"]


@pytest.mark.e2e
@pytest.mark.postgres
def test_a_run_on_postgres_records_no_password(tmp_path: Path, pg_database) -> None:
    """Trust auth accepts any password, so a real run carries one end to end: nothing
    learnai records (params, tags, run name, config.yaml) or prints holds it."""
    from mlflow import MlflowClient

    secret = "s3cr/t@x:y"
    encoded = "s3cr%2Ft%40x%3Ay"  # SQLAlchemy URLs percent-encode '/', '@' and ':'
    db = pg_database()
    uri = db.replace("postgres@", f"postgres:{encoded}@")
    proc = run_learnai(tmp_path, f"tracking.uri={uri}", *TINY)
    client = MlflowClient(tracking_uri=db)
    (run,) = client.search_runs([client.get_experiment_by_name("learnai").experiment_id])
    recorded = [run.info.run_name, *run.data.params.values(), *run.data.tags.values()]
    config = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path)))
    recorded.append(config.read_text())
    recorded += [proc.stdout, proc.stderr]  # a single run: only learnai prints the URI
    for text in recorded:
        assert encoded not in text and secret not in text
    assert "postgres:***@" in run.data.params["tracking.uri"]
    assert "postgres:***@" in config.read_text()


@pytest.mark.e2e
@pytest.mark.postgres
def test_an_unencoded_password_on_the_command_line_is_encoded_for_it(tmp_path: Path) -> None:
    """Typed with '@' and '/' unencoded, the password still reaches PostgreSQL whole
    (the command moves it to the environment, encoded): what fails is the missing
    database, in one line, and no byte holds the password."""
    uri = "postgresql://postgres:p@ss:w/rd@127.0.0.1:5432/no_such_db"
    proc = run_learnai(tmp_path, f"tracking.uri='{uri}'", *TINY, expect=2)
    assert 'database "no_such_db" does not exist' in proc.stderr, proc.stderr
    assert "p@ss" not in proc.stderr and "ss:w" not in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.e2e
def test_an_unencoded_at_in_a_password_not_typed_as_an_override_is_one_line(
    tmp_path: Path,
) -> None:
    """``learnai runs --tracking-uri`` is not rewritten: a driver would take the
    password's tail for the host and print it (``failed to resolve host 'ss@...'``)."""
    uri = "postgresql://postgres:p@ssTail@127.0.0.1/x"
    proc = run_learnai(tmp_path, "runs", "--tracking-uri", uri, expect=2)
    assert "unencoded '@'" in error_line(proc) and "%40" in error_line(proc)
    assert "ssTail" not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_move_secrets_takes_every_url_password_out_of_the_command_line() -> None:
    argv = [
        "-m",
        "tracking.uri=postgresql://me:p@ss/w:rd@db:5432/runs",
        r"hydra.sweeper.storage=postgresql+psycopg://me\:s3cret@db/study",
        "optimizer.lr=0.1,1",
        "data.n_samples=10",
    ]
    moved, env = move_secrets(argv, {})
    assert moved[0] == "-m" and moved[3:] == argv[3:]
    assert moved[1] == (
        "tracking.uri='postgresql://me:${oc.env:LEARNAI_PASSWORD_TRACKING_URI}@db:5432/runs'"
    )
    assert "s3cret" not in " ".join(moved) and "oc.env:LEARNAI_PASSWORD_HYDRA_SWEEPER" in moved[2]
    assert env == {
        "LEARNAI_PASSWORD_TRACKING_URI": "p%40ss%2Fw:rd",
        "LEARNAI_PASSWORD_HYDRA_SWEEPER_STORAGE": "s3cret",
    }


def test_move_secrets_gives_an_http_servers_credentials_to_mlflow() -> None:
    """MLflow prints its tracking URI in "View run ... at:" lines: the URL keeps no user
    part; MLflow's own variables carry it, decoded."""
    moved, env = move_secrets(
        ["tracking.uri=http://alice:p%40ss@srv:5000"], {"MLFLOW_TRACKING_URI": "https://b:x@h"}
    )
    assert moved == ["tracking.uri='http://srv:5000'"]
    assert env == {
        "MLFLOW_TRACKING_USERNAME": "b",  # $MLFLOW_TRACKING_URI's, moved last
        "MLFLOW_TRACKING_PASSWORD": "x",
        "MLFLOW_TRACKING_URI": "https://h",
    }
    assert move_secrets(["tracking.uri=http://srv:5000", "x=1"], {}) == (
        ["tracking.uri=http://srv:5000", "x=1"],
        {},
    )
