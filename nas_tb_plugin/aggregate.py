"""Aligning step series and the min/median/max band across the runs of a group (numpy, NaN-aware)."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

Curve = tuple[np.ndarray, np.ndarray]  # (steps: (n,) int64, values: (n,) float64)


def dedupe_steps(steps: np.ndarray, values: np.ndarray) -> Curve:
    """The points of a series in the order they were written, less those a later point's step is at or
    before (steps (m,) increasing, values (m, ...)): TensorBoard's purge of out-of-order steps, which its
    Rust data server does and its Python loader does not for files without restart events. A run restarted
    at step 0 in the same directory shows the records of its latest start; a repeated step, its last value."""
    steps = np.asarray(steps, dtype=np.int64)
    if steps.size < 2 or np.all(steps[1:] > steps[:-1]):
        return steps, values
    later_min = np.minimum.accumulate(steps[::-1])[::-1]  # the least step from each point on
    keep = np.append(steps[:-1] < later_min[1:], True)
    return steps[keep], values[keep]


def align(series: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """(sorted union of steps (S,), values (len(series), S) with NaN where a series has no step).

    A series' values may also be (k, n): k value rows on its n steps (layers of one run that share their
    steps); the matrix is then (len(series), k, S)."""
    if not series:
        return np.zeros(0, np.int64), np.zeros((0, 0))
    union = np.unique(np.concatenate([np.asarray(s, np.int64) for s, _ in series]))
    matrix = np.full((len(series), *np.shape(series[0][1])[:-1], union.size), np.nan)
    for row, (steps, values) in enumerate(series):
        matrix[row][..., np.searchsorted(union, steps)] = values
    return union, matrix


def band(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-wise (min, median, max) over the rows (axis 0) of ``matrix`` ignoring NaN; NaN where a
    column has no finite value."""
    if not np.isnan(matrix).any():  # the common case; nanmedian on small arrays is ~10x slower
        return matrix.min(axis=0), np.median(matrix, axis=0), matrix.max(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(matrix, axis=0), np.nanmedian(matrix, axis=0), np.nanmax(matrix, axis=0)


def mean_curve(series: Sequence[Curve]) -> Curve:
    """Step-wise mean over the series that have each step (NaN ignored)."""
    steps, matrix = align(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return steps, np.nanmean(matrix, axis=0)
