"""Draw a learning-rate x seed stability map from a sweep's runs.

    python -m learnai -m hydra/launcher=vectorized "optimizer.lr=range(0.02,1.02,0.02)" \\
        trainer.seed=0,1,2,3
    python -m experiments.stability_map                  # the latest sweep in ./mlruns
    python -m experiments.stability_map --out map.png --uri sqlite:///mlruns/mlflow.db

One cell per run: its colour is its outcome (converged, stalled, diverged, pruned), its
shade the final validation loss (log scale); columns are learning rates, rows seeds.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

# low loss is dark for the good outcomes; a diverged run's huge loss is dark red
COLOURS = {"converged": "Greens_r", "stalled": "Oranges_r", "diverged": "Reds", "pruned": "Greys"}


def sweep_runs(uri: str, experiment: str) -> list[tuple[float, int, str, float]]:
    """(lr, seed, outcome, final val loss) of each child of the latest sweep."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    parents = client.search_runs(
        [exp.experiment_id], "tags.`learnai.sweep` = 'true'", order_by=["start_time DESC"]
    )
    children = client.search_runs(
        [exp.experiment_id],
        f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'",
        max_results=5000,
    )
    return [
        (
            float(r.data.params["optimizer.lr"]),
            int(r.data.params["trainer.seed"]),
            r.data.tags.get("outcome", "?"),
            r.data.metrics.get("final_val_loss", math.nan),
        )
        for r in children
    ]


def draw(runs: list[tuple[float, int, str, float]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Patch

    lrs = sorted({r[0] for r in runs})
    seeds = sorted({r[1] for r in runs})
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.3 * len(seeds)))
    for outcome, cmap in COLOURS.items():
        grid = np.full((len(seeds), len(lrs)), np.nan)
        for lr, seed, got, loss in runs:
            if got == outcome:
                finite = math.isfinite(loss) and loss > 0
                grid[seeds.index(seed), lrs.index(lr)] = math.log10(loss) if finite else 3
        ax.imshow(grid, cmap=cmap, aspect="auto", vmin=-1.6, vmax=1.5)
    step = max(1, len(lrs) // 10)
    ax.set_xticks(range(0, len(lrs), step), [f"{lrs[i]:.2g}" for i in range(0, len(lrs), step)])
    ax.set_yticks(range(len(seeds)), [str(s) for s in seeds])
    ax.set_xlabel("optimizer.lr")
    ax.set_ylabel("trainer.seed")
    shade = {"Greens_r": 0.15, "Oranges_r": 0.3, "Reds": 0.85, "Greys": 0.6}
    handles = [Patch(color=plt.get_cmap(c)(shade[c]), label=o) for o, c in COLOURS.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=4)
    ax.set_title(f"stability map: {len(runs)} runs (shade: log10 final val_loss)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", default=f"sqlite:///{Path('mlruns/mlflow.db').resolve()}")
    parser.add_argument("--experiment", default="learnai")
    parser.add_argument("--out", type=Path, default=Path("stability_map_lr_seed.png"))
    args = parser.parse_args()
    draw(sweep_runs(args.uri, args.experiment), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
