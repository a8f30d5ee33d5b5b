"""``python -m training.evaluate_detector``: the NAS-only overfitting alarm against Prechelt's stopping rules
and EB, leave one dataset out; the tables of docs/early-warning.md.

    python -m training.evaluate_detector docs/data/early-warning-runs.json.gz --epochs 25 \\
        --output docs/early-warning-results.md
    python -m training.evaluate_detector docs/data/early-warning-runs.json.gz --epochs 25 --table onset
    python -m training.evaluate_detector digits=runs/ew-digits cifar10=runs/ew-cifar10 --save-curves runs.json.gz

Each DATASET=LOGDIR holds runs ``<LOGDIR>/<model>/seed<k>`` logged by ``python -m training`` (median NAS per
layer, ``test_loss``, ``train_loss``); runs that logged fewer than ``--epochs`` epochs are left out.
``--save-curves`` keeps what is judged (each run's scalars and median NAS per layer, a few KB) in one gzipped
JSON file, which can stand in for the log dirs later: event files of real runs are megabytes each. Runs of one
dataset from several sources are judged together (a later run of the same name replaces the earlier), so new
seeds can join saved ones: ``python -m training.evaluate_detector saved.json.gz cifar10=runs/more-seeds``.

1. The detector's built-in defaults are judged on every run: its alarm, and its stop with rewind to the onset
   of the climb ("NAS rewind", the weights of the last 8 logged epochs kept, as ``NASCallback`` keeps them).
   Applicability: the alarm's status at the last epoch (cannot judge / watching / fired) per kind of network
   (normalised: NormNet, ResNet10-BN, ResNet50; NAS-lowering penalty: L1Net, L2Net, NASReg; plain: the others).
   Onset: on the runs where the alarm fired, the test loss at the onset, the alarm, the rewind, GL_5 and EB.
2. Leave one dataset out: for each dataset in turn, the detector's grid is tuned on that dataset's runs
   alone and judged on the runs of the others, which the tuning never saw.
3. Baselines on the same runs, online: on the test loss (which the NAS alarm never sees) Prechelt's GL_5,
   PQ_3 and UP_2 (strips of 5 epochs); without a validation set, the EB criterion of Mahsereci et al. 2017
   (training/eb.py; stop at the first epoch whose ``eb_criterion``, the mean over its first training
   batches, is > 0), on runs that logged it.

A run "overfits" when its smoothed test loss (centred 3-epoch mean) ends more than 5 % above its smoothed
minimum; the smoothed minimum is the reference moment (it needs the whole curve). Per dataset and method:
overfitting runs caught, median lead before the minimum in epochs (negative = late), stops before the
minimum while the smoothed test loss is still more than 10 % above it ("early"), stops on runs that do not
overfit, and the mean test loss at the stop relative to the run's minimum test loss (a method that never
stops trains to the end).
"""
from __future__ import annotations

import argparse
import functools
import gzip
import itertools
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nas_logger.detector import OverfitDetector, loss_minimum_step, smooth
from nas_logger.integrations.rewind import DEFAULT_KEEP
from nas_logger.layers import normalised_layers, select_layers

from .models import MODELS, nas_layers
from .report import Curves, read_run
from .stopping import generalisation_loss_stop, progress_quotient_stop, up_stop

GRID = {"threshold": (0.25, 0.35, 0.5, 1.0), "window": (3, 4, 5), "quorum": (0.5, 0.75), "patience": (1, 2)}
OVERFIT_MARGIN = 0.05  # a run overfits when its smoothed test loss ends this far above its smoothed minimum
EARLY_MARGIN = 0.10  # a stop is early while the smoothed test loss is this far above its eventual minimum
BASELINES: dict[str, Callable[[list[int], list[float], list[float]], int | None]] = {
    "GL_5": lambda steps, loss, train: generalisation_loss_stop(steps, loss, 5.0),
    "PQ_3": lambda steps, loss, train: progress_quotient_stop(steps, loss, train, 3.0, 5),
    "UP_2": lambda steps, loss, train: up_stop(steps, loss, 2, 5),
}
EB = "EB"
ALARM, REWIND = "NAS alarm", "NAS rewind"
METHODS = (ALARM, REWIND, *BASELINES, EB)
# Networks whose feature layers are normalised (NAS measured before a batch norm): the alarm should say it
# cannot judge them. By the run's model name (its paper name).
NORMALISED_MODELS = ("NormNet", "ResNet10-BN", "ResNet50")
# Penalties that pull NAS down (weights shrunk, NAS regularised): NAS falls or stays low while they overfit.
NAS_LOWERING_MODELS = ("L1Net", "L2Net", "NASReg")
STATES = ("cannot_judge", "watching", "fired")
RUN_WIDTH = 0.125  # the width every kept run was trained at


@functools.cache
def _normalised_layers_of(paper_name: str) -> dict[str, str]:
    """The NAS layers that feed a normalisation layer in the model a run of ``paper_name`` trained, rebuilt
    from ``training.models`` at :data:`RUN_WIDTH` (the kept curves hold no structure). Empty for a name that
    is no model of ``training.models``."""
    spec = next((s for s in MODELS.values() if s.paper_name == paper_name), None)
    if spec is None:
        return {}
    model = spec.build(3, 32, 10, RUN_WIDTH)  # the layers and their order do not depend on the input size
    return normalised_layers(model, select_layers(model, nas_layers(model)))


def fed_normalisation(name: str, run: Curves) -> dict[str, str]:
    """The layers of run ``name`` ("<paper name> seed<k>") that feed a normalisation layer, as the monitor
    finds them on the live model: ``{layer: normalisation class}``."""
    return {layer: cls for layer, cls in _normalised_layers_of(name.split(" ")[0]).items() if layer in run.nas}


@dataclass
class Judged:
    name: str
    overfits: bool
    loss_min: int  # epoch of the smoothed test-loss minimum
    stops: dict[str, int | None]  # per method, the epoch it stops (None: never); NAS rewind: the weights' epoch
    alarm_layers: tuple[str, ...]
    losses: dict[int, float]  # raw test loss per epoch
    smoothed: dict[int, float]
    has_eb: bool = True  # the run logged eb_criterion
    state: str = "watching"  # the alarm's status at the last epoch
    onset: int | None = None  # where the climb became significant, by the alarm

    @property
    def alarm(self) -> int | None:
        return self.stops[ALARM]

    @property
    def kind(self) -> str:
        """normalised, NAS-lowering penalty, or plain (by model name)."""
        model = self.name.split(" ")[0]
        if model in NORMALISED_MODELS:
            return "normalised"
        return "NAS-lowering penalty" if model in NAS_LOWERING_MODELS else "plain"

    def loss_at(self, epoch: int) -> float:
        return self.losses[epoch] / min(self.losses.values())

    def early(self, method: str) -> bool:
        """Stopped before the test-loss minimum, while the smoothed test loss was still more than 10 % above
        its eventual minimum (the first half of the learning phase, roughly)."""
        stop = self.stops[method]
        return (stop is not None and stop < self.loss_min
                and self.smoothed[stop] > (1 + EARLY_MARGIN) * min(self.smoothed.values()))

    def loss_ratio(self, method: str) -> float:
        """Test loss at the stop (at the last epoch when it never stops) over the minimum test loss."""
        stop = self.stops[method]
        return self.losses[stop if stop is not None else max(self.losses)] / min(self.losses.values())


def judge(name: str, run: Curves, keep: int = DEFAULT_KEEP, **options: float) -> Judged:
    """``run`` judged by the NAS alarm (``options``: the detector's), its stop with rewind to the onset (the
    weights of the last ``keep`` logged epochs kept, as ``NASCallback(restore="onset")`` does) and the baselines."""
    epochs = run.epochs
    loss = [run.scalars["test_loss"][e] for e in epochs]
    train = [run.scalars.get("train_loss", {}).get(e, float("nan")) for e in epochs]
    smoothed = smooth(loss)
    detector = OverfitDetector(**{"normalised": fed_normalisation(name, run), **options})
    for e in epochs:
        detector.update(e, {layer: v[e] for layer, v in run.nas.items()})
    alarm = detector.alarm
    stops = {ALARM: alarm.step if alarm else None, REWIND: None}
    if alarm is not None:
        kept = epochs[max(epochs.index(alarm.step) - keep + 1, 0)]
        stops[REWIND] = max(alarm.onset, kept) if alarm.onset is not None else alarm.step
    stops.update({method: rule(epochs, loss, train) for method, rule in BASELINES.items()})
    eb = run.scalars.get("eb_criterion", {})
    stops[EB] = next((e for e in epochs if eb.get(e, -1.0) > 0), None) if eb else None
    return Judged(name, bool(smoothed[-1] > (1 + OVERFIT_MARGIN) * smoothed.min()), loss_minimum_step(epochs, loss),
                  stops, alarm.layers if alarm else (), dict(zip(epochs, loss)), dict(zip(epochs, smoothed.tolist())),
                  bool(eb), detector.status()["state"], alarm.onset if alarm else None)


def cost(judged: list[Judged], epochs: int) -> float:
    """Mean epochs off the test-loss minimum on overfitting runs (a missed alarm costs the whole run)
    plus a whole run for every alarm on a run that does not overfit."""
    total = 0.0
    for j in judged:
        if j.overfits:
            total += epochs if j.alarm is None else abs(j.alarm - j.loss_min)
        elif j.alarm is not None:
            total += epochs
    return total / len(judged)


def tune(runs: dict[str, Curves], epochs: int) -> tuple[dict[str, float], float]:
    """The grid point of :data:`GRID` with the lowest :func:`cost` on ``runs`` (the first on ties)."""
    best = None
    for values in itertools.product(*GRID.values()):
        options = dict(zip(GRID, values))
        c = cost([judge(n, r, **options) for n, r in runs.items()], epochs)
        if best is None or c < best[1]:
            best = (options, c)
    return best


def _settings(options: dict[str, float] | None = None) -> str:
    detector = OverfitDetector(**(options or {}))
    names = ("threshold", "window", "min_rate", "quorum", "patience", "warmup", "noise_z")
    return ", ".join(f"{k}={getattr(detector, k)}" for k in names)


def run_table(judged: list[Judged]) -> list[str]:
    lines = ["| run | overfits | test-loss min | " + " | ".join(METHODS) + " | NAS lead | status | alarm layers |",
             "|---|---|---|" + "---|" * len(METHODS) + "---|---|---|"]
    for j in judged:
        stops = " | ".join("-" if j.stops[m] is None else f"{j.stops[m]}{' (early)' if j.early(m) else ''}"
                           for m in METHODS)
        lead = "-" if j.alarm is None else f"{j.loss_min - j.alarm:+d}"
        lines.append(f"| {j.name} | {'yes' if j.overfits else 'no'} | {j.loss_min} | {stops} | {lead} | "
                     f"{j.state.replace('_', ' ')} | {', '.join(j.alarm_layers) or '-'} |")
    return lines


def applicability_rows(judged: list[Judged]) -> list[str]:
    """Confusion table: the kind of network against the alarm's status at the last epoch; and, per kind, how
    many runs whose test loss rises while no alarm fires are told "cannot judge"."""
    rows = ["| network | runs | " + " | ".join(s.replace("_", " ") for s in STATES)
            + " | overfitting runs without an alarm: cannot judge |", "|---|---|" + "---|" * len(STATES) + "---|"]
    for kind in ("normalised", "plain", "NAS-lowering penalty"):
        runs = [j for j in judged if j.kind == kind]
        if not runs:
            continue
        silent = [j for j in runs if j.overfits and j.alarm is None]
        rows.append(f"| {kind} | {len(runs)} | " + " | ".join(str(sum(j.state == s for j in runs)) for s in STATES)
                    + f" | {sum(j.state == 'cannot_judge' for j in silent)} / {len(silent)} |")
    return rows


ONSET_METHODS = ("minimum", "NAS onset", ALARM, REWIND, "GL_5", EB)


def onset_rows(dataset: str, judged: list[Judged]) -> list[str]:
    """On the runs where the alarm fired: mean test loss over the run's minimum at the onset, the alarm, the
    rewind, GL_5 and EB (a rule that never stops: the last epoch), and the mean epochs from onset to alarm."""
    fired = [j for j in judged if j.alarm is not None]
    if not fired:
        return [f"| {dataset} | 0 | " + " | ".join("-" for _ in ONSET_METHODS) + " | - |"]
    last = {j.name: max(j.losses) for j in fired}

    def at(j: Judged, method: str) -> float:
        if method == "minimum":
            return 1.0
        stop = j.onset if method == "NAS onset" else j.stops[method]
        return j.loss_at(stop if stop is not None else last[j.name])

    means = [statistics.mean(at(j, m) for j in fired) for m in ONSET_METHODS]
    gap = statistics.mean(j.alarm - j.onset for j in fired)
    return [f"| {dataset} | {len(fired)} | " + " | ".join(f"{v:.3f}" for v in means) + f" | {gap:.1f} |"]


ONSET_HEADER = ["| dataset | alarms | " + " | ".join(ONSET_METHODS) + " | epochs onset to alarm |",
                "|---|---|" + "---|" * len(ONSET_METHODS) + "---|"]


def summary_rows(dataset: str, judged: list[Judged], methods: Sequence[str] = METHODS,
                 label: Callable[[str], str] = str) -> list[str]:
    """One markdown row per method: caught, median lead, early stops, false stops, loss at the stop."""
    over = [j for j in judged if j.overfits]
    clean = [j for j in judged if not j.overfits]
    rows = []
    for m in methods:
        if m == EB and not all(j.has_eb for j in judged):
            rows.append(f"| {dataset} | {label(m)} | not logged by these runs | | | | |")
            continue
        caught = [j for j in over if j.stops[m] is not None]
        leads = [j.loss_min - j.stops[m] for j in caught]
        lead = f"{statistics.median(leads):+g}" if leads else "-"
        early = sum(j.early(m) for j in judged if j.stops[m] is not None)
        stopped = sum(j.stops[m] is not None for j in judged)
        ratio = statistics.mean(j.loss_ratio(m) for j in judged) if judged else float("nan")
        rows.append(f"| {dataset} | {label(m)} | {len(caught)} / {len(over)} | {lead} | {early} / {stopped} | "
                    f"{sum(j.stops[m] is not None for j in clean)} / {len(clean)} | {ratio:.3f} |")
    return rows


SUMMARY_HEADER = [
    "| dataset | method | overfitting runs caught | median lead (epochs) | early stops / stops | stops on runs that do not overfit | test loss at stop / minimum (mean) |",
    "|---|---|---|---|---|---|---|",
]


def complete(run: Curves, epochs: int) -> bool:
    """The run logged at least ``epochs`` test losses (the only runs judged)."""
    return len(run.scalars.get("test_loss", {})) >= epochs


def complete_runs(where: str, runs: dict[str, Curves], epochs: int) -> dict[str, Curves]:
    """The :func:`complete` runs of ``runs``; an error that names ``where`` they came from when there is none."""
    kept = {name: run for name, run in runs.items() if complete(run, epochs)}
    if not kept:
        raise ValueError(f"{where}: no run with {epochs} logged epochs")
    return kept


def load_suites(suites: dict[str, Path], epochs: int) -> dict[str, dict[str, Curves]]:
    """``{dataset: {"<Model> seed<k>": curves}}`` for the complete runs under each logdir."""
    loaded = {}
    for dataset, root in suites.items():
        runs = {}
        for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            paper = MODELS[model_dir.name].paper_name if model_dir.name in MODELS else model_dir.name
            for seed_dir in sorted(model_dir.glob("seed*")):
                runs[f"{paper} {seed_dir.name}"] = read_run(seed_dir)
        loaded[dataset] = complete_runs(f"{dataset}={root} (<model>/seed<k>)", runs, epochs)
    return loaded


def merge(into: dict[str, Curves], runs: dict[str, Curves], source: Path) -> None:
    """Add ``runs`` to ``into``, a run whose name is taken already as "<name> (<source's name>)": runs of one
    dataset from several log dirs or curves files are judged together, none dropped."""
    for name, run in runs.items():
        into[f"{name} ({source.name})" if name in into else name] = run


def save_curves(suites: dict[str, dict[str, Curves]], path: Path) -> None:
    """Write ``suites`` as gzipped JSON ``{dataset: {run: curves}}`` (see :meth:`Curves.to_json`)."""
    data = {d: {name: run.to_json() for name, run in runs.items()} for d, runs in suites.items()}
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))


def read_curves(path: Path) -> dict[str, dict[str, Curves]]:
    """The suites :func:`save_curves` wrote to ``path``."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
        return {d: {name: Curves.from_json(run) for name, run in runs.items()} for d, runs in data.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a curves file written by --save-curves ({e})") from e


TABLES = ("summary", "applicability", "onset", "leave-one-out", "runs")


def report(suites: dict[str, dict[str, Curves]], epochs: int, tables: Sequence[str] = TABLES) -> str:
    """The markdown report: the ``tables`` asked for, in :data:`TABLES` order."""
    defaults = {d: [judge(n, r) for n, r in runs.items()] for d, runs in suites.items()}
    everyone = [j for judged in defaults.values() for j in judged]
    lines = [f"Detector defaults: {_settings()}; stop with rewind keeps {DEFAULT_KEEP} epochs."]
    if "summary" in tables:
        lines += ["", "## Every run, built-in defaults and baselines", "", *SUMMARY_HEADER]
        for dataset, judged in defaults.items():
            lines += summary_rows(dataset, judged)
    if "applicability" in tables:
        lines += ["", "## Applicability: the alarm's status at the last epoch, every run", "",
                  *applicability_rows(everyone)]
    if "onset" in tables:
        lines += ["", "## Onset: test loss / minimum on the runs where the alarm fired (mean)", "", *ONSET_HEADER]
        for dataset, judged in defaults.items():
            lines += onset_rows(dataset, judged)
    if "leave-one-out" in tables and len(suites) > 1:
        tuned, rows = [], []
        for tuned_on, runs in suites.items():
            options, c = tune(runs, epochs)
            tuned.append(f"- tuned on {tuned_on} ({len(runs)} runs): {options} (cost {c:.2f} epochs per run)")
            for dataset, held_out in suites.items():
                if dataset != tuned_on:
                    judged = [judge(n, r, **options) for n, r in held_out.items()]
                    rows += summary_rows(dataset, judged, (ALARM, REWIND), lambda m: f"{m} tuned on {tuned_on}")
        lines += ["", "## Leave one dataset out: tuned on one dataset, judged on the others", "",
                  f"Grid: {GRID}.", "", *tuned, "", *SUMMARY_HEADER, *rows]
    if "runs" in tables:
        for dataset, judged in defaults.items():
            lines += ["", f"## {dataset}: per run, built-in defaults", "", *run_table(judged)]
    return "\n".join(lines)


def _suite(text: str) -> tuple[str | None, Path]:
    """``DATASET=LOGDIR`` -> (dataset, logdir); a curves file -> (None, file)."""
    name, sep, folder = text.partition("=")
    if sep and name and Path(folder).is_dir():
        return name, Path(folder)
    if not sep and Path(text).is_file():
        return None, Path(text)
    raise argparse.ArgumentTypeError(
        f"expected DATASET=LOGDIR with an existing LOGDIR, or a file written by --save-curves; got {text!r}")


def _writable_file(text: str) -> Path:
    """A file path that can be written (tried now, so that a bad path fails before the work, not after)."""
    path = Path(text)
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {e.strerror}; give a file in an existing, "
                                         "writable folder") from None
    if not existed:
        path.unlink()
    return path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate_detector", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suites", nargs="+", type=_suite, metavar="DATASET=LOGDIR|CURVES",
                   help="runs <LOGDIR>/<model>/seed<k>, or a file written by --save-curves")
    p.add_argument("--epochs", type=int, default=30, help="epochs a run must have logged to be judged (default 30)")
    p.add_argument("--output", type=_writable_file, default=None, help="write the report (markdown) here as well")
    p.add_argument("--table", dest="tables", action="append", choices=TABLES, default=None,
                   help="only this table (repeatable; default all): the tables of docs/early-warning.md")
    p.add_argument("--save-curves", type=_writable_file, default=None, metavar="FILE",
                   help="also write the judged runs' curves here (gzipped JSON), to be judged again without the logs")
    args = p.parse_args(argv)
    try:
        suites = {}
        for dataset, path in args.suites:
            if dataset is None:
                for d, runs in read_curves(path).items():
                    merge(suites.setdefault(d, {}), complete_runs(f"{path}: {d}", runs, args.epochs), path)
            else:
                merge(suites.setdefault(dataset, {}), load_suites({dataset: path}, args.epochs)[dataset], path)
    except ValueError as e:
        print(f"evaluate_detector: error: {e}", file=sys.stderr)
        return 2
    if args.save_curves:
        save_curves(suites, args.save_curves)
    text = report(suites, args.epochs, args.tables or TABLES)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
