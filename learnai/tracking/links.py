"""Where to look at runs and studies: MLflow UI links and the optuna-dashboard command.

MLflow 3.17's UI opens an experiment on the view of the browser's "GenAI / Model
training" switch, GenAI by default (a traces page saying "No data available"), whatever
the experiment's ``mlflow.experimentKind`` tag says. The ``workflowType`` URL parameter
is the switch's public form: links made here open on the runs table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from learnai.secrets import mask_secrets

WORKFLOW = "workflowType=machine_learning"
DEFAULT_UI = "http://127.0.0.1:5000"  # `mlflow ui` without --host/--port


def experiment_url(server: str, experiment_id: str) -> str:
    """The experiment's runs table, in the model-training view."""
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?{WORKFLOW}"


def run_url(server: str, experiment_id: str, run_id: str, tab: str = "") -> str:
    """A run's page; ``tab`` e.g. ``artifacts/training.gif`` opens that artifact."""
    path = f"/#/experiments/{experiment_id}/runs/{run_id}" + (f"/{tab}" if tab else "")
    return f"{server.rstrip('/')}{path}?{WORKFLOW}"


def _script(name: str) -> str | None:
    """The console script next to this interpreter (works without activating the venv),
    relative to the working directory where it can be."""
    script = Path(sys.executable).parent / name
    if not script.exists():
        return None
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def ui_command(uri: str, experiment_id: str | None = None) -> str:
    """The shell command that opens the MLflow UI on this store, and, given the
    experiment, the link that opens its runs (not MLflow 3's default GenAI view)."""
    if uri.startswith(("http://", "https://")):
        target = experiment_url(uri, experiment_id) if experiment_id else uri
        return f"open {mask_secrets(target)} in a browser"
    text = f"{_script('mlflow') or 'mlflow'} ui --backend-store-uri {mask_secrets(uri)}"
    if experiment_id:
        text += f" then open {experiment_url(DEFAULT_UI, experiment_id)}"
    return text


def dashboard_command(storage_url: str) -> str:
    """How to open a study's storage in optuna-dashboard, installing it if needed.

    optuna-dashboard is the optional ``dashboard`` extra; the hint names the script next
    to this interpreter when it is installed, else the install command first.
    """
    url = mask_secrets(storage_url)
    if (script := _script("optuna-dashboard")) is not None:
        return f"{script} {url}"
    pip = Path(sys.executable).parent / "pip"
    return (
        f"{pip if pip.exists() else 'pip'} install -e '.[dashboard]' (in the learnai "
        f"checkout; or: pip install optuna-dashboard), then: optuna-dashboard {url}"
    )
