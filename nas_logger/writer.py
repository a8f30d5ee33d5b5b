"""The event file a monitor writes to: a SummaryWriter kept alive through disk errors and a removed log dir.

The only place that reaches TensorBoard's private ``SummaryWriter._get_file_writer()``; code, tests and
benchmarks that write a ``Summary`` proto call :func:`file_writer`. Also the only place that changes how
TensorBoard writes: the record checksums of the monitor's own event files in C (:func:`use_c_checksums`,
through the event file writer's private ``_async_writer._writer``).
"""
from __future__ import annotations

import ctypes
import functools
import logging
import os
import struct
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from tensorboard.compat.proto import summary_pb2
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
from tensorboard.summary.writer import record_writer
from torch.utils.tensorboard import SummaryWriter

from . import native

logger = logging.getLogger(__name__)


def file_writer(writer: SummaryWriter):
    """The event-file writer behind ``writer``, whose ``add_summary(summary, step)`` writes a Summary proto."""
    return writer._get_file_writer()


@functools.lru_cache(maxsize=None)
def c_masked_crc32c() -> Callable[[bytes], int] | None:
    """TensorBoard's masked CRC-32C of a record, computed in C (``crc32c.c``), where it builds and gives
    TensorBoard's checksums on a sample; else None (TensorBoard's Python one stays)."""
    python = pywrap_tensorflow.masked_crc32c
    # TensorBoard's writer thread is a daemon: with the GIL held, no exit can unmap the code under a checksum.
    library = native.load("crc32c.c", "C checksum of event records", "TensorBoard's Python one computes them",
                          hold_gil=True, symbols=("nas_masked_crc32c",))
    if library is None:
        return None
    c_crc = library.nas_masked_crc32c
    c_crc.argtypes, c_crc.restype = [ctypes.c_char_p, ctypes.c_size_t], ctypes.c_uint32

    def masked_crc32c(data: bytes) -> int:
        return c_crc(data, len(data)) if type(data) is bytes else python(data)

    sample = bytes(range(256)) * 3 + b"nas"
    if any(masked_crc32c(d) != python(d) for d in (b"", b"a", sample)):
        logger.info("C checksum of event records differs from TensorBoard's; TensorBoard's Python one computes them")
        return None
    return masked_crc32c


class CChecksumRecordWriter(record_writer.RecordWriter):
    """TensorBoard's record writer with each record's two checksums computed in C: the same bytes.

    TensorBoard computes them in a Python loop, ~0.15 us a byte: a few hundred microseconds per step's
    NAS record (heatmaps), which ``log`` waits for in its flush, 3-4 % of a small model's log. Only the
    record writers of the event files a monitor writes to become this class; every other writer of the
    process keeps TensorBoard's own, and ``record_writer.masked_crc32c`` is left as it is.
    """

    def write(self, data: bytes) -> None:
        crc = c_masked_crc32c()
        header = struct.pack("<Q", len(data))  # TFRecord framing, as RecordWriter.write lays it out
        self._writer.write(header + struct.pack("<I", crc(header)) + data + struct.pack("<I", crc(data)))


def use_c_checksums(writer: SummaryWriter) -> bool:
    """Make ``writer``'s event file checksum its records in C; whether it does (False without a C
    compiler, or where TensorBoard's writer is not built as this expects)."""
    records = getattr(getattr(getattr(file_writer(writer), "event_writer", None), "_async_writer", None), "_writer", None)
    if type(records) is CChecksumRecordWriter:
        return True
    if type(records) is not record_writer.RecordWriter or c_masked_crc32c() is None:
        return False
    records.__class__ = CChecksumRecordWriter  # the writer thread holds the same object
    return True


def log_dir_of(target: str | os.PathLike | SummaryWriter) -> str | os.PathLike:
    """The directory that ``target`` (a directory or a SummaryWriter) writes to."""
    return target.log_dir if isinstance(target, SummaryWriter) else target


def _open(log_dir: str | os.PathLike) -> SummaryWriter:
    """A SummaryWriter on ``log_dir``, created if needed; OSError if it cannot be written."""
    path = Path(log_dir)
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass
    return SummaryWriter(str(path))


class ResilientWriter:
    """Writes summaries and scalars to ``target``: a directory (the writer is opened here, owned, closed by
    :meth:`close`) or a caller's SummaryWriter (shared: never closed nor reopened here).

    An OSError while writing is the caller's to catch and hand to :meth:`failed`, which warns once and drops
    an owned writer; the next :meth:`open` reopens it, on the directory created anew if it was removed.
    ``tags`` holds the tags whose metadata the current event file carries; a reopened file starts empty.
    """

    def __init__(self, target: str | os.PathLike | SummaryWriter) -> None:
        self.owns = not isinstance(target, SummaryWriter)
        self.log_dir = log_dir_of(target)
        self.tags: set[str] = set()
        self._warned = False
        if self.owns:
            try:
                self.writer: SummaryWriter | None = _open(target)
            except OSError as e:
                raise ValueError(f"log_dir {str(target)!r} is not writable: {e}") from None
        else:
            self.writer = target

    def open(self) -> SummaryWriter:
        """The writer, reopened (on a recreated directory) after a failure or a removed log dir."""
        if self.owns and self.writer is not None and not os.path.isdir(self.writer.log_dir):
            self.failed(f"log_dir {str(self.log_dir)!r} was removed while logging; it is created anew")
        if self.writer is None:
            self.writer = _open(self.log_dir)
            self.tags.clear()
        use_c_checksums(self.writer)  # every file it writes to, reopened ones too
        return self.writer

    def add_summary(self, summary: summary_pb2.Summary, step: int) -> None:
        """Write ``summary`` at ``step`` to the writer :meth:`open` returned."""
        file_writer(self.writer).add_summary(summary, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def failed(self, message: str) -> None:
        """Warn once per writer; drop a writer we own so that the next :meth:`open` reopens it."""
        if not self._warned:
            self._warned = True
            warnings.warn(f"{message}; training goes on and the monitor retries at every log", RuntimeWarning, stacklevel=3)
        if self.owns and self.writer is not None:
            try:
                self.writer.close()
            except OSError:
                pass
            self.writer = None

    def close(self) -> None:
        """Close a writer we own; a shared one stays open for its owner."""
        if self.owns and self.writer is not None:
            self.writer.close()
            self.writer = None
