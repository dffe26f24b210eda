"""``learnai rerun RUN_ID``: train again from exactly the config a run logged.

Each run logs its resolved config as the artifact ``config.yaml``. Running that file
through Hydra (``--config-dir``) would compose learnai's own ``config.yaml`` instead, so
this command loads the file itself, checks it against learnai's schemas and trains.

Where the rerun is recorded: in the store given by ``--tracking-uri`` (else
``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlruns/mlflow.db``), the same store the run is
read from, in the experiment the config names. The logged ``tracking.uri`` is never
used: its password is masked (``postgresql://user:***@host``) and a relative SQLite path
meant the directory the original run was launched from. The new run is named
``rerun of <name>`` and tagged ``learnai.rerun_of=<RUN_ID>``; Optuna trial links and a
sweep's parent are dropped (a rerun stands alone).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from learnai.tracking.stores import open_existing, store_uri
from learnai.tracking.uris import StoreError

CONFIG_ARTIFACT = "config.yaml"
RERUN_TAG = "learnai.rerun_of"


def load_config(text_or_path: Path, overrides: list[str]) -> Any:
    """The logged YAML merged onto learnai's schema (types checked), plus ``overrides``
    (``key=value``)."""
    from omegaconf import OmegaConf

    from learnai.config import LearnaiConfig

    logged = OmegaConf.load(text_or_path)
    if not isinstance(logged, dict) and not OmegaConf.is_dict(logged):
        raise ValueError(f"{text_or_path} is not a learnai config")
    logged.pop("trial", None)  # a rerun is not a trial of the study
    for group in ("data", "model"):  # runs logged before learnai.train held them
        target = OmegaConf.select(logged, f"{group}._target_")
        if isinstance(target, str) and target.startswith(f"learnai.{group}"):
            logged[group]["_target_"] = target.replace("learnai.", "learnai.train.", 1)
    cfg = OmegaConf.merge(OmegaConf.structured(LearnaiConfig), logged)
    cfg.tracking.parent_run_id = None  # a rerun stands alone, whatever sweep it was in
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    return cfg


def main(argv: list[str]) -> int:
    """``learnai rerun RUN_ID|CONFIG.yaml [--tracking-uri URI] [key=value ...]``."""
    parser = argparse.ArgumentParser(
        prog="learnai rerun",
        description="Train again from the config.yaml a run logged; record a new run.",
    )
    parser.add_argument("run", help="the run's id, or a downloaded config.yaml")
    parser.add_argument("overrides", nargs="*", help="optional key=value changes")
    parser.add_argument(
        "--tracking-uri",
        help="store to read the run from and record the rerun in "
        "(default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)",
    )
    args = parser.parse_args(argv)
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        print(f"learnai rerun: invalid override {bad[0]!r} (expected key=value)", file=sys.stderr)
        return 2

    from learnai.config import ConfigError
    from learnai.secrets import mask_secrets

    uri = store_uri(args.tracking_uri)
    source = Path(args.run)
    name, run_id = source.stem, None
    try:
        with tempfile.TemporaryDirectory(prefix="learnai-rerun-") as tmp:
            if source.suffix in (".yaml", ".yml"):
                if not source.is_file():
                    raise StoreError(f"no config file {source}")
                path = source
            else:
                run_id = args.run
                path, name = _download(uri, run_id, Path(tmp))
            cfg = load_config(path, args.overrides)
    except StoreError as err:
        print(f"learnai rerun: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # OmegaConf: a value that does not fit the schema
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"learnai rerun: invalid config from {args.run}: {first}", file=sys.stderr)
        return 2
    cfg.tracking.uri = uri
    cfg.tracking.run_name = f"rerun of {name}"[:250]
    print(f"learnai: re-running {args.run} in {mask_secrets(uri)}", file=sys.stderr)

    from learnai.train.run import run

    try:
        result = run(cfg)
    except ConfigError as err:
        print(f"learnai rerun: {err}", file=sys.stderr)
        return 2
    if run_id is not None:
        from learnai.tracking.stores import open_store

        open_store(uri).set_tag(result.run_id, RERUN_TAG, run_id)
    print(
        f"rerun {result.run_id}: {result.outcome} | train_loss {result.final_train_loss:.6g}"
        f" | val_loss {result.final_val_loss:.6g} | val_r2 {result.val_r2:.4f}"
    )
    return 0


def _download(uri: str, run_id: str, dst: Path) -> tuple[Path, str]:
    """Fetch the run's ``config.yaml``; :class:`StoreError` naming what is missing."""
    client = open_existing(uri)
    try:
        run = client.get_run(run_id)
    except Exception as err:
        from learnai.secrets import mask_secrets

        raise StoreError(f"no run {run_id!r} in {mask_secrets(uri)}") from err
    try:
        local = client.download_artifacts(run_id, CONFIG_ARTIFACT, str(dst))
    except Exception as err:
        raise StoreError(f"run {run_id} has no {CONFIG_ARTIFACT} artifact to re-run") from err
    return Path(local), run.info.run_name or run_id
