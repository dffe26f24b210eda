"""The trained network, logged with MLflow's PyTorch flavour through the run's own client.

``mlflow.pytorch.log_model`` writes through the process-global tracking URI and active
run; learnai writes every record through an explicit ``MlflowClient``. So the same steps
are taken with the client's public API: create the LoggedModel (linked to its run, which
fills the runs table's Models column and lets a user register it), save the model with
``mlflow.pytorch.save_model`` into a temporary folder, upload that folder as the model's
artifacts, record it as the run's output, and mark it READY (FAILED if anything broke).
``mlflow.pytorch.load_model(f"models:/{model_id}")`` or ``runs:/<run_id>/model`` then
returns the network.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from torch import nn

log = logging.getLogger("learnai")

MODEL_NAME = "model"  # the name MLflow's docs use: runs:/<run_id>/model


def log_torch_model(
    client: MlflowClient,
    experiment_id: str,
    run_id: str,
    model: nn.Module,
    example: Any,
    step: int = 0,
    params: Mapping[str, str] | None = None,
    metrics: Iterable[str] = (),
) -> str | None:
    """Log ``model`` (a copy, on the CPU) with a signature and ``example`` (a few input
    rows, a tensor) as the run's model; returns the LoggedModel's id, or None when the
    model cannot be saved (one warning line: the run goes on; a store that fails raises)."""
    import mlflow.pytorch
    import torch
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model, infer_signature

    cpu = copy.deepcopy(model).to("cpu").eval()
    x = example.detach().to("cpu").float()
    with torch.no_grad():
        y = cpu(x)
    x_np, y_np = x.numpy(), y.numpy()
    logged = client.create_logged_model(
        experiment_id,
        name=MODEL_NAME,
        source_run_id=run_id,
        model_type="pytorch",
        params=dict(params or {}),
    )
    try:
        with tempfile.TemporaryDirectory(prefix="learnai-model-") as tmp:
            path = Path(tmp) / MODEL_NAME
            try:
                mlflow.pytorch.save_model(
                    cpu,
                    str(path),
                    mlflow_model=Model(
                        artifact_path=logged.artifact_location,
                        run_id=run_id,
                        model_id=logged.model_id,
                        model_uuid=logged.model_id,
                    ),
                    signature=infer_signature(x_np, y_np),
                    input_example=x_np,
                    # named, so MLflow does not infer them (a subprocess, seconds a run)
                    pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                )
            except Exception as err:  # e.g. a plugged-in model torch.export cannot trace
                client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                log.warning(
                    "run %s: its model was not logged (torch.export could not save it: %s)",
                    run_id,
                    first[:200],
                )
                return None
            client.log_model_artifacts(logged.model_id, str(path))
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step)])
        if metrics:  # the model's page shows how it did: the run's values, linked to it
            _link_metrics(client, run_id, logged.model_id, step, metrics)
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    return logged.model_id


def _link_metrics(
    client: MlflowClient, run_id: str, model_id: str, step: int, keys: Iterable[str]
) -> None:
    """The run's values of ``keys`` at ``step`` logged again with the model's id, with
    their own timestamps (as ``mlflow.log_model`` does): the store keeps one point."""
    from mlflow.entities import Metric

    linked = [
        Metric(m.key, m.value, m.timestamp, m.step, model_id=model_id)
        for key in keys
        for m in client.get_metric_history(run_id, key)
        if m.step == step
    ]
    if linked:
        client.log_batch(run_id, metrics=linked)
