"""Where to look at runs and studies: MLflow UI links and the optuna-dashboard command.

MLflow 3.17's UI opens an experiment on the view of the browser's "GenAI / Model
training" switch, GenAI by default (a traces page saying "No data available"), whatever
the experiment's ``mlflow.experimentKind`` tag says. The ``workflowType`` URL parameter
is the switch's public form: links made here open on the runs table.

The runs table opens best first: links sort it by ``final_val_loss`` (the UI reads
``orderByKey``/``orderByAsc`` from the URL; sorted by a metric, MLflow lists a sweep's
children flat instead of folded under their parent). Which columns it shows is no URL
parameter; it is the UI's view state, which MLflow's own "Share" button stores as an
experiment tag ``mlflow.sharedViewState.<key>`` and opens with ``?viewStateShareKey=<key>``.
learnai writes such a view (the outcome, the swept params, ``final_val_loss``, the
Models column; best first) and links to it: :func:`runs_view`, :func:`view_key`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from learnai.secrets import mask_secrets

WORKFLOW = "workflowType=machine_learning"
DEFAULT_UI = "http://127.0.0.1:5000"  # `mlflow ui` without --host/--port
SORT_METRIC = "final_val_loss"  # lower is better; diverged runs have none and come last
BEST_FIRST = "orderByKey=metrics.%60final_val_loss%60&orderByAsc=true"
VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # the UI's own key for a shared view
VIEW_PARAM = "viewStateShareKey"


def experiment_url(server: str, experiment_id: str, view: str | None = None) -> str:
    """The experiment's runs table, in the model-training view, best run first; with
    ``view`` (a key from :func:`view_key`), in that stored view (columns, order)."""
    query = f"{VIEW_PARAM}={view}" if view else BEST_FIRST
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}&{WORKFLOW}"


def column(kind: str, key: str) -> str:
    """The UI's name of a runs-table column: ``params.`optimizer.lr```."""
    return f"{kind}.`{key}`"


def runs_view(params: Sequence[str] = ()) -> dict[str, Any]:
    """The runs-table view learnai links to: best first (the children of a sweep listed
    flat), with the outcome, ``params``, the final losses and the Models column shown."""
    columns = [
        column("tags", "outcome"),
        *(column("params", p) for p in params),
        column("metrics", SORT_METRIC),
        column("metrics", "val_r2"),
        column("attributes", "Models"),
        column("attributes", "Duration"),
    ]
    return {
        "orderByKey": column("metrics", SORT_METRIC),
        "orderByAsc": True,
        "selectedColumns": columns,
    }


def view_key(state: Mapping[str, Any]) -> tuple[str, str]:
    """(JSON text, key) of a view: the key is the text's hash, so the same view is stored
    once however many runs link to it."""
    text = json.dumps(dict(state), sort_keys=True, separators=(",", ":"))
    return text, "learnai-" + hashlib.sha256(text.encode()).hexdigest()[:16]


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


def ui_base(uri: str) -> str:
    """Where the UI of this store is served: the tracking server itself, or what
    ``mlflow ui`` serves by default."""
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else DEFAULT_UI


def ui_command(uri: str, experiment_id: str | None = None, view: str | None = None) -> str:
    """The shell command that opens the MLflow UI on this store, and, given the
    experiment, the link that opens its runs (not MLflow 3's default GenAI view), best
    first, in ``view`` when given."""
    if uri.startswith(("http://", "https://")):
        target = experiment_url(uri, experiment_id, view) if experiment_id else uri
        return f"open {mask_secrets(target)} in a browser"
    text = f"{_script('mlflow') or 'mlflow'} ui --backend-store-uri {mask_secrets(uri)}"
    if experiment_id:
        text += f" then open {experiment_url(DEFAULT_UI, experiment_id, view)}"
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
