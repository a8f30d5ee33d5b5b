"""The package's C sources, compiled on first use with the system C compiler and loaded through ctypes.

Built into a per-user cache (about a second, once per source, compiler and flags), with the CPU's vector
features named (AVX2 and FMA where present) and, for a compiler that rejects those flags, once more with
portable ones. ctypes releases the GIL during a call. Without a compiler the caller gets None and keeps
its Python or torch path; the reason is logged once per source.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import subprocess
import sysconfig
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

PORTABLE_FLAGS = ["-O2", "-shared", "-fPIC"]


def _flags() -> list[str]:
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    # The features by name, not -march=native: the cache key then tells two CPUs sharing a home apart.
    native = ["-mavx2", "-mfma"] if " avx2" in cpu and " fma" in cpu else []
    # No errno and no trap semantics; IEEE NaN/inf handling stays (no -ffast-math: NaN must spread).
    return ["-O3", "-fno-math-errno", "-fno-trapping-math", *native, "-shared", "-fPIC"]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nas_logger"


def _build(source: Path, compiler: str, flags: list[str]) -> Path:
    """The shared library of ``source`` built with ``flags`` (cached under a key of source, compiler and flags)."""
    key = hashlib.sha256(source.read_bytes() + " ".join([compiler, *flags]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"{source.stem}-{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Built under a private name and renamed: concurrent processes (DDP ranks) never load a half file.
        fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        try:
            subprocess.run([compiler, *flags, str(source), "-o", partial, "-lm"], check=True,
                           capture_output=True, timeout=120)
            os.replace(partial, target)
        finally:
            if os.path.exists(partial):
                os.remove(partial)
    return target


def _failure(e: Exception) -> str:
    detail = getattr(e, "stderr", b"") or b""
    return f"{e} {detail.decode(errors='replace')[-300:]}"


@functools.lru_cache(maxsize=None)
def load(source: str, what: str, instead: str, hold_gil: bool = False) -> ctypes.CDLL | None:
    """The library of the package's C file ``source``, or None (logged once as "``what`` unavailable
    (why); ``instead``") where it cannot be built or loaded. ``hold_gil``: its calls keep the GIL (for
    short calls from daemon threads, which must not be inside the library while the interpreter exits)."""
    compiler = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    path = Path(__file__).with_name(source)
    try:
        try:
            target = _build(path, compiler, _flags())
        except subprocess.SubprocessError as e:
            # A compiler that rejects the optimising flags still builds the portable code.
            target = _build(path, compiler, PORTABLE_FLAGS)
            logger.info("%s built with %s only (%s)", what, " ".join(PORTABLE_FLAGS), _failure(e))
        return (ctypes.PyDLL if hold_gil else ctypes.CDLL)(str(target))
    except (OSError, subprocess.SubprocessError) as e:
        logger.info("%s unavailable (%s); %s", what, _failure(e), instead)
        return None
