#!/usr/bin/env bash
# GPU check: the default run (Part 3) with trainer.device=auto must run on CUDA (tag
# device=cuda) and reach the same outcome as the same run on the CPU.
# Usage: bash experiments/gpu_check.sh   (PY=... to pick the interpreter)
set -euo pipefail
PY=${PY:-python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d)
cd "$work"
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
for device in auto cpu; do
  "$PY" -m learnai trainer.device=$device tracking.experiment=gpu_check \
    tracking.run_name=$device trainer.progress=false
done
"$PY" - <<'PY'
from mlflow import MlflowClient

client = MlflowClient("sqlite:///mlruns/mlflow.db")
exp = client.get_experiment_by_name("gpu_check")
runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
auto, cpu = runs["auto"], runs["cpu"]
for name, r in (("auto", auto), ("cpu", cpu)):
    m = r.data.metrics
    print(f"{name:5s} device={r.data.tags['device']} outcome={r.data.tags['outcome']} "
          f"val_loss={m['final_val_loss']:.5f} val_r2={m['val_r2']:.4f} "
          f"seconds={(r.info.end_time - r.info.start_time) / 1000:.2f}")
assert auto.data.tags["device"] == "cuda", auto.data.tags["device"]
assert auto.data.tags["outcome"] == cpu.data.tags["outcome"], "outcomes differ"
assert len(client.get_metric_history(auto.info.run_id, "train_loss")) == 200
print("GPU CHECK PASSED")
PY
