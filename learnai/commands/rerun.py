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
import re
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
    (``key=value``, checked as the command line's are: :class:`ConfigError` names a key
    or group option that does not exist)."""
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
        from learnai.config.command_line import learnai_conf_dir
        from learnai.config.overrides import apply_overrides

        cfg = apply_overrides(cfg, overrides, learnai_conf_dir())
    return cfg


def main(argv: list[str]) -> int:
    """``learnai rerun RUN_ID|CONFIG.yaml [--tracking-uri URI] [key=value ...]``."""
    parser = argparse.ArgumentParser(
        prog="learnai rerun",
        description="Train again from the config.yaml a run logged; record a new run.",
    )
    parser.add_argument(
        "run", help="the run's id (or a unique start of it), or a downloaded config.yaml"
    )
    parser.add_argument("overrides", nargs="*", help="optional key=value changes")
    parser.add_argument(
        "--tracking-uri",
        help="store to read the run from and record the rerun in "
        "(default: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db)",
    )
    args = parser.parse_intermixed_args(argv)  # overrides before or after --tracking-uri
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
                path, name, run_id = _download(uri, args.run, Path(tmp))
            cfg = load_config(path, args.overrides)
    except (StoreError, ConfigError) as err:
        print(f"learnai rerun: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # OmegaConf: a value that does not fit the schema
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"learnai rerun: invalid config from {args.run}: {first}", file=sys.stderr)
        return 2
    cfg.tracking.uri = uri
    cfg.tracking.run_name = f"rerun of {name}"[:250]
    print(f"learnai: re-running {run_id or args.run} in {mask_secrets(uri)}", file=sys.stderr)

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


def _download(uri: str, run: str, dst: Path) -> tuple[Path, str, str]:
    """Fetch the ``config.yaml`` of the run ``run`` names (its id or a unique start of
    it): the file, the run's name and its id; :class:`StoreError` naming what is missing."""
    client = open_existing(uri)
    run_id = _resolve(client, uri, run)
    found = client.get_run(run_id)
    try:
        local = client.download_artifacts(run_id, CONFIG_ARTIFACT, str(dst))
    except Exception as err:
        raise StoreError(f"run {run_id} has no {CONFIG_ARTIFACT} artifact to re-run") from err
    name = found.data.tags.get("learnai.name") or found.info.run_name  # without its verdict
    return Path(local), name or run_id, run_id


def _resolve(client: Any, uri: str, run: str) -> str:
    """The full id of the one run whose id is or starts with ``run``."""
    from learnai.secrets import mask_secrets

    try:
        return client.get_run(run).info.run_id
    except Exception:
        pass
    if not re.fullmatch(r"[0-9a-fA-F]{1,31}", run):
        raise StoreError(f"no run {run!r} in {mask_secrets(uri)}")
    try:
        experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        matches = client.search_runs(
            experiments, f"attributes.run_id LIKE '{run.lower()}%'", max_results=11
        )
    except Exception as err:
        raise StoreError(f"cannot search {mask_secrets(uri)} for run {run!r}: {err}") from err
    if not matches:
        raise StoreError(f"no run {run!r} in {mask_secrets(uri)}")
    if len(matches) > 1:
        ids = ", ".join(m.info.run_id for m in matches[:10])
        more = ", ..." if len(matches) > 10 else ""
        raise StoreError(f"run id {run!r} is ambiguous: it starts {ids}{more}; type more of it")
    return matches[0].info.run_id
