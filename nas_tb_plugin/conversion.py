"""Conversions of the points of one listed tag into what the routes show: pure functions of the points.

Each ``to_*`` returns ``(payload, cells)``, cells being the payload's size in array cells (8 bytes each, for
the cache budget), and calls ``warn(problem)`` for points it skips; a series with nothing left to show is a
``ValueError`` naming what is wrong. Points are a data provider's list, or :class:`LazyPoints` (the gRPC
response of a read, its tensors decoded when used).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tensorboard.compat.proto import tensor_pb2, types_pb2
from tensorboard.util import tensor_util

from nas_logger import format as fmt

from .aggregate import dedupe_steps
from .listing import Series, Table

_DT_FLOAT = 1  # tensorflow.DataType DT_FLOAT in a TensorProto
REQUIRED_FIELDS = ("min", "median", "max")  # the stat fields a line is drawn from


@dataclass(frozen=True)
class Stats:
    """A layer's statistics in one run: steps (n,) and the min/median/max columns (n,), float64; the wall
    time of each step (n,) in seconds since the epoch, as its events say (None across the runs of a group)."""

    steps: np.ndarray
    min: np.ndarray
    median: np.ndarray
    max: np.ndarray
    wall_times: np.ndarray | None = None


# --- conversions of the points of one listed tag: (payload, its size in array cells) ----------------

def _steps(points) -> np.ndarray:
    return np.fromiter((p.step for p in points), dtype=np.int64, count=len(points))


def _wall_times(points) -> np.ndarray:
    """The wall time of each point (a list, or :class:`LazyPoints`), seconds since the epoch (n,)."""
    if isinstance(points, LazyPoints):
        return points.wall_times
    return np.fromiter((p.wall_time for p in points), dtype=np.float64, count=len(points))


def to_stats(series: Series, points, warn) -> tuple[Stats, int]:
    """A layer's per-layer stats series, less the points whose tensor does not hold its fields (warned)."""
    points = _well_shaped(points, lambda shape: math.prod(shape) == len(series.fields), warn,
                          f"{len(series.fields)} stat fields")
    if not points:
        raise ValueError(f"no step of the stats series holds its {len(series.fields)} fields")
    values = np.array([np.ravel(p.numpy) for p in points], dtype=np.float64)
    steps, order = dedupe_steps(_steps(points), np.arange(len(points)))
    values, wall_times = values[order], _wall_times(points)[order]
    col = {name: np.ascontiguousarray(values[:, i]) for i, name in enumerate(series.fields)}
    return Stats(steps, col["min"], col["median"], col["max"], wall_times), 5 * steps.size


def split_table(table: Table, points, warn) -> tuple[dict[str, Stats], int]:
    """{layer name: Stats} of a stats table's rows, less the steps whose tensor does not hold its layers x
    fields (warned: a step another model wrote into the run, a torn one)."""
    size = len(table.layers) * len(table.fields)
    points = _well_shaped(points, lambda shape: math.prod(shape) == size, warn,
                          f"{len(table.layers)} layers x {len(table.fields)} fields")
    if not len(points):
        raise ValueError(f"no step of the stats table holds its {len(table.layers)} layers")
    lazy = isinstance(points, LazyPoints)
    values = _float_rows(points) if lazy else np.array([np.ravel(p.numpy) for p in points], dtype=np.float64)
    values = values.reshape(len(points), len(table.layers), len(table.fields))
    steps, order = dedupe_steps(points.steps if lazy else _steps(points), np.arange(len(points)))
    values, wall_times = values[order], _wall_times(points)[order]
    col = [table.fields.index(f) for f in REQUIRED_FIELDS]
    stats = {layer.name: Stats(steps, *(np.ascontiguousarray(values[:, row, c]) for c in col), wall_times)
             for row, layer in enumerate(table.layers)}
    return stats, (3 * len(table.layers) + 2) * steps.size


# The tensor types that hold numbers a NAS value can be made of.
_NUMERIC = frozenset((types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF, types_pb2.DT_BFLOAT16,
                      types_pb2.DT_INT8, types_pb2.DT_INT16, types_pb2.DT_INT32, types_pb2.DT_INT64,
                      types_pb2.DT_UINT8, types_pb2.DT_UINT16, types_pb2.DT_UINT32, types_pb2.DT_UINT64))


def _numeric_shape(point, rank_only: bool) -> tuple[int, ...] | int | None:
    """The shape (or with ``rank_only`` the rank) of a point's tensor (a TensorProto, or a point with
    ``numpy``), None when it holds no numbers. A rank is read ~10x faster from a TensorProto than a shape,
    which counts for the thousands of tensors of a heatmap listing."""
    if isinstance(point, tensor_pb2.TensorProto):
        if point.dtype not in _NUMERIC:
            return None
        return len(point.tensor_shape.dim) if rank_only else tuple(d.size for d in point.tensor_shape.dim)
    array = np.asarray(point.numpy)
    return None if array.dtype.kind not in "fiu" else array.ndim if rank_only else array.shape


def _well_shaped(points, fits, warn, wanted: str, rank_only: bool = False):
    """``points`` (a list, or :class:`LazyPoints`) less those whose tensor holds no numbers or has a shape
    (with ``rank_only``, a rank) that ``fits`` refuses; the skipped steps named in ``warn``."""
    lazy = isinstance(points, LazyPoints)
    items = [points.values[int(i)] for i in points.index] if lazy else points
    keep = np.array([shape is not None and fits(shape) for shape in (_numeric_shape(p, rank_only) for p in items)],
                    dtype=bool)
    if keep.all():
        return points
    steps = points.steps if lazy else _steps(points)
    bad = steps[~keep].tolist()
    warn(f"{len(bad)} step{'s' if len(bad) > 1 else ''} ({', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''})"
         f" whose tensor does not hold {wanted}, skipped")
    return points.subset(keep) if lazy else [p for p, k in zip(points, keep) if k]


class LazyPoints:
    """The points of one tag as :meth:`.reading.Reader._read_tensors_lazily` reads them from the gRPC response: the
    steps, and the tensor protos undecoded (``index`` into ``values``)."""

    def __init__(self, steps: np.ndarray, wall_times: np.ndarray, values, index: np.ndarray, cells: int) -> None:
        self.steps, self.wall_times, self.values, self.index, self.cells = steps, wall_times, values, index, cells

    @classmethod
    def of(cls, data) -> "LazyPoints":
        steps = np.array(data.step, dtype=np.int64)
        # Cells for the cache budget, estimated from the last tensor (a series' tensors share a shape, or grow
        # with the probe count): ByteSize of the whole series walks every tensor (~0.7 ms for 300 heatmaps).
        cells = steps.size * data.value[-1].ByteSize() // 4 if steps.size else 0
        return cls(steps, np.array(data.wall_time, dtype=np.float64), data.value, np.arange(steps.size), cells)

    def upto(self, max_step: int) -> "LazyPoints":
        keep = self.steps <= max_step
        return self if keep.all() else self.subset(keep)

    def subset(self, keep: np.ndarray) -> "LazyPoints":
        """The points where ``keep`` (a bool mask) holds."""
        return LazyPoints(self.steps[keep], self.wall_times[keep], self.values, self.index[keep], self.cells)

    def __len__(self) -> int:
        return self.steps.size


class Maps:
    """The (k, H, W) maps (one per probe sample) of a heatmap series by step index, each made on first use
    (a request shows one step of a series; on the gRPC provider each costs a decoding)."""

    def __init__(self, size: int, make) -> None:
        self._make = make
        self._maps: list[np.ndarray | None] = [None] * size

    def __len__(self) -> int:
        return len(self._maps)

    def __getitem__(self, index: int) -> np.ndarray:
        index = range(len(self._maps))[index]
        found = self._maps[index]
        if found is None:
            found = self._maps[index] = _as_maps(self._make(index))
        return found

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def to_maps(points, warn) -> tuple[tuple[np.ndarray, Maps], int]:
    """(steps (n,), Maps) of a heatmap series (a list of points, or :class:`LazyPoints`), less the steps
    whose tensor is no map of numbers (warned)."""
    points = _well_shaped(points, lambda rank: rank <= 3, warn, "(probe, H, W) numbers", rank_only=True)
    if isinstance(points, LazyPoints):
        steps, order = dedupe_steps(points.steps, points.index)
        values = points.values
        return (steps, Maps(steps.size, lambda i: tensor_util.make_ndarray(values[int(order[i])]))), points.cells
    steps, order = dedupe_steps(_steps(points), np.arange(len(points)))
    kept = [points[i].numpy for i in order]
    return (steps, Maps(len(kept), kept.__getitem__)), sum(np.size(m) for m in kept)


def _float_rows(points: LazyPoints) -> np.ndarray:
    """The tensors of ``points`` as float64 rows, one per point: float32 tensors of one shape from their
    bytes at once, anything else through ``make_ndarray`` (ValueError when they differ in size)."""
    protos = [points.values[int(i)] for i in points.index]
    if protos and all(p.dtype == _DT_FLOAT and p.tensor_content and p.tensor_shape == protos[0].tensor_shape
                      for p in protos):
        return np.frombuffer(b"".join(p.tensor_content for p in protos), dtype="<f4").astype(np.float64
                                                                                           ).reshape(len(protos), -1)
    return np.array([np.ravel(tensor_util.make_ndarray(p)) for p in protos], dtype=np.float64)


def to_curve(points) -> tuple[tuple[np.ndarray, np.ndarray], int]:
    """(steps (n,), values (n,) float64) of a scalar series."""
    values = np.fromiter((p.value for p in points), dtype=np.float64, count=len(points))
    steps, values = dedupe_steps(_steps(points), values)
    return (steps, values), 2 * steps.size


def to_alarm(points) -> tuple[tuple[int, list[str]] | None, int]:
    """(step, triggering layer names) of an alarm (its first, written once), None without points."""
    if not points:
        return None, 0
    first = min(points, key=lambda p: p.step)
    names = np.asarray(first.numpy).reshape(-1)
    return (int(first.step), [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]), 1


def to_status(points, warn) -> tuple[dict | None, int]:
    """The alarm status of the last step of an alarm status series (the last one written for it), None
    without points or when that record is no valid status (warned)."""
    if not points:
        return None, 0
    last = max(range(len(points)), key=lambda i: (points[i].step, i))
    value = np.asarray(points[last].numpy)
    parsed = fmt.parse_alarm_status(value.item()) if value.size == 1 and isinstance(value.item(), bytes) else None
    if parsed is None:
        warn(f"the alarm status at step {points[last].step} is no valid status")
    return parsed, 1


def to_png(points, warn) -> tuple[list[bytes] | None, int]:
    """The encoded images of a probe PNG record (its last one; one per probe sample, one in files written
    before k probes), None without points or when it holds no PNG bytes (warned)."""
    if not points:
        return None, 1
    images = list(np.asarray(points[-1].numpy).reshape(-1))
    if not images or not all(isinstance(image, bytes) and image.startswith(_PNG) for image in images):
        warn("the probe record holds no PNG images")
        return None, 1
    return images, 1


_PNG = b"\x89PNG\r\n\x1a\n"


def _as_maps(array: np.ndarray) -> np.ndarray:
    """(k, H, W) maps, one per probe sample, as stored (float32 keeps the cache small): a 2-D map of a file
    written before k probes is k = 1."""
    array = np.asarray(array, dtype=np.float32)
    if array.ndim > 3:
        raise ValueError(f"a heatmap tensor has at most 3 dimensions (probe, H, W); got shape {array.shape}")
    return array.reshape((1,) * (3 - array.ndim) + array.shape)
