"""What the line, stripe, step and export views show of a selection, read through the reader: each layer's
min/median/max over steps (of one run, or the band across a group's runs) and the overlays drawn over
them (losses, overfitting step, alarms, alarm status).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas_logger import format as fmt

from .aggregate import align, band, mean_curve
from .conversion import Stats
from .overfit import default_loss_tag, overfit_step
from .reading import Reader
from .responses import json_floats, step_json, steps_json
from .selection import Selection


@dataclass
class LayerLine:
    """A layer's min/median/max over steps: of one run, or across the runs of a group."""

    layer: fmt.LayerInfo
    stats: Stats


@dataclass
class Loss:
    """A loss overlay: a scalar tag's points (of one run, or the step-wise mean across a group's runs)."""

    tag: str
    steps: np.ndarray
    values: np.ndarray

    def json(self) -> dict:
        return {"tag": self.tag, "steps": steps_json(self.steps), "values": json_floats(self.values)}


def layer_lines(reader: Reader, ctx, eid, sel: Selection) -> tuple[list[LayerLine], dict]:
    """Per layer (by depth): the run's min/median/max over receptive fields, or the group's
    min/median/max across its runs of the per-run medians; and the ``times`` of the response (see
    :func:`times_of`)."""
    stats = reader.read_run_stats(ctx, eid, sel.listings)
    times = times_of(stats.get(sel.runs[0], {}).values())
    layers: dict[str, fmt.LayerInfo] = {}
    for run in sel.runs:
        for layer in sel.listings[run].layers():
            layers.setdefault(layer.name, layer)
    lines, batches = [], {}
    for layer in sorted(layers.values(), key=fmt.layer_order):
        per_run = [stats[r][layer.name] for r in sel.runs if layer.name in stats.get(r, {})]
        if not per_run:
            continue
        if sel.kind == "run":
            (s,) = per_run
            lines.append(LayerLine(layer, s))
        else:  # banded below; the layers whose runs share their step arrays (a table's rows do) at once
            batches.setdefault(tuple(id(s.steps) for s in per_run), []).append((len(lines), per_run))
            lines.append(LayerLine(layer, None))
    for batch in batches.values():
        runs = batch[0][1]
        steps, matrix = align([(s.steps, np.stack([per_run[r].median for _, per_run in batch]))
                               for r, s in enumerate(runs)])
        for (at, _), *columns in zip(batch, *band(matrix)):
            lines[at].stats = Stats(steps, *columns)
    return lines, times


def losses(reader: Reader, ctx, eid, sel: Selection, loss_tags: tuple[str | None, str | None]
            ) -> tuple[Loss | None, Loss | None, list[str]]:
    """The overlays ``loss_tag`` (default: the tag named like a test loss) and ``loss_tag2``, for a group
    the step-wise mean across its runs that have the tag; and the requested tags that none of the
    selection's runs has (their overlay is None: a view of runs that log different losses still draws)."""
    tags = sel.scalars
    available = set().union(*tags.values()) if tags else set()
    result, missing = [], []
    for tag, default in zip(loss_tags, (default_loss_tag(available), None)):
        if tag is not None and tag not in available:
            missing.append(tag)
            result.append(None)
            continue
        tag = tag or default
        listed = {run: run_tags[tag] for run, run_tags in tags.items() if tag in run_tags}
        curves = reader.read_scalar(ctx, eid, listed) if tag else {}
        if not curves:
            result.append(None)
        elif sel.kind == "run":
            result.append(Loss(tag, *curves[sel.name]))
        else:
            result.append(Loss(tag, *mean_curve(list(curves.values()))))
    return result[0], result[1], missing


def overlay(reader: Reader, ctx, eid, sel: Selection, loss_tags: tuple[str | None, str | None]) -> dict:
    """What ``lines`` and ``stripes`` draw over the layers: the losses, the overfitting step, the alarms."""
    loss, loss2, missing = losses(reader, ctx, eid, sel, loss_tags)
    alarms = reader.read_alarms(ctx, eid, sel.listings)
    return {
        "alarm_status": reader.read_alarm_statuses(ctx, eid, sel.listings),
        "loss": loss.json() if loss else None,
        "loss2": loss2.json() if loss2 else None,
        "missing_loss_tags": missing,
        "overfit_step": step_json(overfit_step(loss.steps, loss.values)) if loss else None,
        "alarms": [{"run": run, "step": step_json(step), "layers": layers}
                   for run in sel.runs for step, layers in alarms.get(run, ())],
    }


def times_of(stats) -> dict:
    """``{"steps": [...], "wall_times": [seconds since the epoch]}`` of a run's logged steps: those of its
    layer with the most steps (a stats table's rows share theirs), as its events say; empty without any."""
    found = max(stats, key=lambda s: s.steps.size, default=None)
    if found is None or found.wall_times is None:
        return {"steps": [], "wall_times": []}
    # Wall times keep their full precision: json_floats' 7 digits would round them to ~1000 s.
    return {"steps": steps_json(found.steps), "wall_times": found.wall_times.tolist()}


