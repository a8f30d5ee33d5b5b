"""``python -m training.report runs/demo``: the reproduction table, read back from a grid's event files.

For each model (``<logdir>/<model>/seed<k>``) over its repeats: peak test accuracy, the epoch of the lowest
test loss and how far the test loss rises after it, the distorted test loss over the same span, and the
NAS of the feature layers (all but the prediction layer; per layer the median s_k over the probe's
receptive fields, then averaged over layers) after the first epoch, at the test-loss minimum and at the
end. The test-loss minimum is nas_logger's ``loss_minimum_step`` (minimum of the 3-epoch moving average);
the NAS alarm is nas_logger's NAS-only ``OverfitDetector`` run over the logged medians.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import nas_logger
from nas_tb_plugin.reading import local_reader

from .models import MODELS


@dataclass
class Curves:
    """One run: ``scalars[tag][epoch]`` and ``nas[layer][epoch]`` (median NAS), layers ordered by depth."""

    scalars: dict[str, dict[int, float]]
    nas: dict[str, dict[int, float]]

    @property
    def feature_layers(self) -> list[str]:
        return list(self.nas)[:-1]

    @property
    def epochs(self) -> list[int]:
        return sorted(self.scalars["test_loss"])

    @property
    def overfit_epoch(self) -> int | None:
        """Minimum of the 3-epoch moving average of the test loss; None when it is never finite (diverged)."""
        loss = self.scalars["test_loss"]
        return nas_logger.loss_minimum_step(self.epochs, [loss[e] for e in self.epochs])

    @property
    def alarm_epoch(self) -> int | None:
        alarm = nas_logger.nas_alarm(self.epochs, {layer: [v[e] for e in self.epochs] for layer, v in self.nas.items()})
        return alarm.step if alarm is not None else None

    def to_json(self) -> dict:
        """``{"scalars": {tag: {epoch: value}}, "nas": {layer: {epoch: median}}}`` with string epochs (JSON keys)."""
        return {"scalars": self.scalars, "nas": self.nas}

    @classmethod
    def from_json(cls, data: dict) -> "Curves":
        """The inverse of :meth:`to_json` (epochs back to ints, layer order kept)."""
        def by_epoch(series: dict) -> dict[int, float]:
            return {int(e): float(v) for e, v in series.items()}

        return cls({t: by_epoch(v) for t, v in data["scalars"].items()}, {l: by_epoch(v) for l, v in data["nas"].items()})

    def feature_nas(self, epoch: int) -> float:
        """Mean over the feature layers of their median NAS at ``epoch``."""
        return statistics.mean(self.nas[layer][epoch] for layer in self.feature_layers)


def read_run(run_dir: str | Path) -> Curves:
    """One run's scalars and per-layer median NAS, read by the NAS plugin's reader (as the NAS tab shows them)."""
    reader, ctx = local_reader(run_dir)
    scalar_tags = reader.list_scalar_tags(ctx, "", runs=["."]).get(".", {})
    scalars = {tag: _by_step(*reader.read_scalar(ctx, "", {".": listed}).get(".", ((), ())))
               for tag, listed in scalar_tags.items()}
    listing = reader.list_nas(ctx, "", runs=["."]).get(".")
    if listing is None:
        return Curves(scalars, {})
    stats = reader.read_run_stats(ctx, "", {".": listing})["."]
    return Curves(scalars, {l.name: _by_step(stats[l.name].steps, stats[l.name].median)
                            for l in listing.layers() if l.name in stats})


def _by_step(steps, values) -> dict[int, float]:
    return dict(zip(np.asarray(steps).tolist(), np.asarray(values, dtype=np.float64).tolist()))


def _mean_sd(values: list[float], digits: int = 3) -> str:
    """``mean ± sd`` of ``values``; ``-`` for none (every run diverged)."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    # statistics.stdev fails on NaN (a run that diverged late): its spread is NaN
    spread = statistics.stdev(values) if all(map(math.isfinite, values)) else math.nan
    sd = f" ± {spread:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f}{sd}"


def _smoothed(values: dict[int, float], epoch: int) -> float:
    """3-epoch centred moving average at ``epoch`` (what the overfitting moment is taken from)."""
    near = [values[e] for e in (epoch - 1, epoch, epoch + 1) if e in values]
    return statistics.mean(near)


def model_row(name: str, runs: list[Curves]) -> list[str]:
    peak, best, alarms, loss_min, loss_end, distorted, nas1, nas_best, nas_end = ([] for _ in range(9))
    for run in runs:
        loss = run.scalars["test_loss"]
        first, last, m = run.epochs[0], run.epochs[-1], run.overfit_epoch
        peak.append(max(run.scalars["test_accuracy"].values()))
        best.append(m)
        alarms.append(run.alarm_epoch)
        loss_end.append(_smoothed(loss, last))
        nas1.append(run.feature_nas(first))
        nas_end.append(run.feature_nas(last))
        if m is None:  # diverged: no finite test loss, so no minimum to read the other columns at
            distorted.append("diverged")
            continue
        loss_min.append(_smoothed(loss, m))
        if "distorted_test_loss" in run.scalars:
            d = run.scalars["distorted_test_loss"]
            distorted.append(f"{_smoothed(d, m):.2f} → {_smoothed(d, last):.2f}")
        nas_best.append(run.feature_nas(m))
    return [
        MODELS[name].paper_name if name in MODELS else name,
        _mean_sd(peak, 4),
        ", ".join("diverged" if m is None else str(m) for m in best),
        ", ".join("-" if a is None else str(a) for a in alarms),
        f"{_mean_sd(loss_min, 2)} → {_mean_sd(loss_end, 2)}",
        "; ".join(distorted) if distorted else "-",
        _mean_sd(nas1),
        _mean_sd(nas_best),
        _mean_sd(nas_end),
    ]


HEADER = [
    "model", "peak test accuracy (mean ± sd)", "test-loss minimum, epoch (per seed)", "NAS alarm, epoch (per seed)",
    "test loss at minimum → end (smoothed)", "distorted test loss, same epochs (per seed)",
    "NAS after epoch 1", "NAS at test-loss minimum", "NAS at the end",
]


def layer_table(name: str, runs: list[Curves]) -> list[str]:
    """Per layer: median NAS at epoch 0, at the test-loss minimum and at the end, mean over runs."""
    lines = [f"\n{MODELS[name].paper_name if name in MODELS else name}, median NAS per layer (mean over {len(runs)} runs):\n",
             "| layer | after epoch 1 | at test-loss minimum | at the end |", "|---|---|---|---|"]
    for layer in runs[0].nas:
        cells = []
        for pick in (lambda r: r.epochs[0], lambda r: r.overfit_epoch, lambda r: r.epochs[-1]):
            values = [r.nas[layer][pick(r)] for r in runs if pick(r) is not None]  # a diverged run has no minimum
            cells.append(f"{statistics.mean(values):.3f}" if values else "-")
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return lines


def report(*log_dirs: str | Path, layers: bool = True) -> str:
    """The markdown tables for the grids in ``log_dirs`` (each holding ``<model>/seed<k>`` runs)."""
    folders = [d for root in map(Path, log_dirs) for d in sorted(root.iterdir()) if d.is_dir()] if log_dirs else []
    if not folders:
        raise ValueError(f"no model folders (<model>/seed<k>) in {', '.join(map(str, log_dirs))}")
    folders.sort(key=lambda d: list(MODELS).index(d.name) if d.name in MODELS else len(MODELS))
    runs = {d.name: [read_run(s) for s in sorted(d.glob("seed*"))] for d in folders}
    runs = {name: r for name, r in runs.items() if r}
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(model_row(name, r)) + " |" for name, r in runs.items()]
    if layers:
        for name, r in runs.items():
            lines += layer_table(name, r)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.report", description=__doc__)
    p.add_argument("logdirs", nargs="+", metavar="LOGDIR", help="grid folders; the same model in two is merged")
    p.add_argument("--no-layers", action="store_true", help="only the per-model table")
    args = p.parse_args(argv)
    print(report(*args.logdirs, layers=not args.no_layers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
