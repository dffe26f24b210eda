"""A team's MLflow tracking server in one command: PostgreSQL runs, served artifacts.

``python -m learnai.commands.server --db postgresql://mlflow@db:5432/runs --artifacts /srv/mlflow``
(or ``make server DB=... ARTIFACTS=... PORT=5000``) does what a team would otherwise type
and get subtly wrong:

- it creates or upgrades the store's schema under learnai's lock first
  (:func:`learnai.tracking.stores.prepare`), so a sweep starting beside a fresh server does not
  race it creating the tables;
- artifacts are *served* (``--serve-artifacts --artifacts-destination``): runs log them
  through the server over HTTP, so no job needs the server's disk or a shared folder;
- it binds to 127.0.0.1 unless ``--host`` says otherwise (an MLflow server without auth
  lets anyone who reaches it read and delete runs);
- credentials come from the environment only: the store URI travels to ``mlflow server``
  in ``MLFLOW_BACKEND_STORE_URI`` (not its command line, which ``ps`` shows), its password
  in ``PGPASSWORD``/``~/.pgpass``; with ``--app-name basic-auth`` the first admin's
  password is ``MLFLOW_AUTH_ADMIN_PASSWORD`` and clients send
  ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``.

The process then *becomes* ``mlflow server`` (exec): a service manager's stop signal
reaches the server itself.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from learnai.config import ConfigError
from learnai.secrets import mask_secrets

__all__ = ["main", "server_command"]

AUTH_INI = """[mlflow]
default_permission = {permission}
database_uri = {auth_db}
admin_username = {admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
"""


def server_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The ``mlflow server`` argv and the environment additions for ``args``."""
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--serve-artifacts",
        "--artifacts-destination",
        str(Path(args.artifacts).resolve()),
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        str(args.workers),
    ]
    env = {"MLFLOW_BACKEND_STORE_URI": args.db, "MLFLOW_DISABLE_TELEMETRY": "true"}
    # MLflow's job runner (seven more processes, for GenAI evaluation jobs) doubles the
    # server's start-up and serves nothing learnai logs: off unless the user turns it on.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = os.environ.get(
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"
    )
    if args.app_name:
        cmd += ["--app-name", args.app_name]
    if args.allowed_hosts:
        cmd += ["--allowed-hosts", args.allowed_hosts]
    return cmd, env


def _auth_config(args: argparse.Namespace) -> dict[str, str]:
    """For ``--app-name basic-auth``: an auth config naming no password (MLflow reads the
    first admin's from ``MLFLOW_AUTH_ADMIN_PASSWORD``), unless the user has their own."""
    if args.app_name != "basic-auth" or os.environ.get("MLFLOW_AUTH_CONFIG_PATH"):
        return {}
    for key in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        if not os.environ.get(key):
            raise ConfigError(f"--app-name basic-auth needs {key} in the environment")
    state = Path(args.artifacts).resolve().parent
    auth_db = args.auth_db or f"sqlite:///{state / 'mlflow-auth.db'}"
    ini = state / "mlflow-auth.ini"
    ini.write_text(
        AUTH_INI.format(
            permission=args.default_permission,
            auth_db=auth_db,
            admin=os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin"),
        )
    )
    return {"MLFLOW_AUTH_CONFIG_PATH": str(ini)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m learnai.commands.server",
        description="Start an MLflow tracking server on a database store with served "
        "artifacts, after creating its schema under learnai's lock.",
    )
    p.add_argument(
        "--db",
        default=os.environ.get("MLFLOW_BACKEND_STORE_URI"),
        help="the run store, e.g. postgresql://mlflow@db:5432/runs (password: PGPASSWORD); "
        "default: $MLFLOW_BACKEND_STORE_URI",
    )
    p.add_argument("--artifacts", required=True, help="folder the server keeps artifacts in")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--app-name", default=None, help="basic-auth: MLflow's users and passwords")
    p.add_argument(
        "--auth-db",
        default=None,
        help="basic-auth's user store (default: SQLite next to the artifacts folder)",
    )
    p.add_argument("--default-permission", default="READ", help="basic-auth: for other users")
    p.add_argument(
        "--allowed-hosts",
        default=None,
        help="Host headers to accept, when served under a name (MLflow's DNS-rebinding guard)",
    )
    args = p.parse_args(argv)
    if not args.db:
        p.error("--db is required (or set MLFLOW_BACKEND_STORE_URI)")
    if not 0 < args.port < 65536:
        p.error(f"--port: {args.port} is not a port (1..65535)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from learnai.tracking.stores import prepare

    try:
        if not args.db.startswith(("postgresql", "mysql", "sqlite:")):
            raise ConfigError(f"--db: {mask_secrets(args.db)} is not a database URI")
        env = _auth_config(args)  # a missing admin password is refused before anything
        Path(args.artifacts).mkdir(parents=True, exist_ok=True)
        prepare(args.db)  # the schema, under the lock sweeps take too
    except (ConfigError, OSError) as err:
        print(f"learnai: {err}", file=sys.stderr)
        return 2
    cmd, server_env = server_command(args)
    print(
        f"learnai: MLflow server for {mask_secrets(args.db)} on http://{args.host}:{args.port}, "
        f"artifacts in {Path(args.artifacts).resolve()}",
        file=sys.stderr,
        flush=True,
    )
    os.execve(cmd[0], cmd, {**os.environ, **server_env, **env})
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
