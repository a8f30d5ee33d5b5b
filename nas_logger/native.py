"""The package's C sources, compiled on first use with the system C compiler and loaded through ctypes.

Built into a per-user cache (about a second, once per source, compiler and flags), with the CPU's vector
features named (AVX2 and FMA where present) and, for a compiler that rejects those flags, once more with
portable ones. ctypes releases the GIL during a call. ``CC`` may hold a command with arguments
(``"ccache gcc"``).

Only code this user built is loaded, as ssh trusts only key files no one else can change:
- the cache (``$XDG_CACHE_HOME/nas_logger`` or ``~/.cache/nas_logger``, created 0700) is used when this user
  owns it and no one else can write to it; otherwise each process builds into a private temporary folder
  (one warning says why).
- a library is compiled in a private scratch folder, copied into the cache under a temporary name and
  renamed, so no process ever sees half a file; its name ends in the sha256 of its bytes. It is loaded only
  when it is this user's regular file that no one else can write and its bytes still hash to its name, and
  it is read and loaded through the checked folder's open descriptor, so a path swapped meanwhile is not
  followed. A truncated or altered library is removed and built again, never loaded.

Where a library cannot be built or loaded, or lacks a function the caller needs, the caller gets None and
keeps its Python or torch path, with one warning naming the reason (the compiler's command and its error
among them); only a default compiler that is not installed is a quieter INFO line.
"""
from __future__ import annotations

import atexit
import ctypes
import functools
import hashlib
import logging
import os
import secrets
import shlex
import shutil
import stat
import subprocess
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

PORTABLE_FLAGS = ["-O2", "-shared", "-fPIC"]
_HASH_CHARS = 32  # of the sha256 hex digest that ends a library's name


def _flags() -> list[str]:
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    # The features by name, not -march=native: the cache key then tells two CPUs sharing a home apart.
    native = ["-mavx2", "-mfma"] if " avx2" in cpu and " fma" in cpu else []
    # No errno and no trap semantics; IEEE NaN/inf handling stays (no -ffast-math: NaN must spread).
    return ["-O3", "-fno-math-errno", "-fno-trapping-math", *native, "-shared", "-fPIC"]


def _compiler() -> tuple[list[str], bool]:
    """The compiler command (``CC`` split as a shell would, or Python's own compiler) and whether the user
    chose it (``CC`` set)."""
    chosen = os.environ.get("CC", "").strip()
    if chosen:
        return shlex.split(chosen), True
    return [(sysconfig.get_config_var("CC") or "cc").split()[0]], False


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nas_logger"


def _untrusted(st: os.stat_result) -> str | None:
    """Why a file or folder with status ``st`` may hold code someone else wrote; None when only this user can."""
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not this user's {os.geteuid()}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by others (mode {stat.filemode(st.st_mode)})"
    return None


class Folder:
    """A folder only this user can write to, held open: every file in it is opened relative to ``fd``."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def loadable(self, name: str) -> str:
        """The path a dlopen of ``name`` takes: through the open descriptor where /proc shows it."""
        through_fd = Path(f"/proc/self/fd/{self.fd}")
        return str(through_fd / name if through_fd.is_dir() else self.path / name)


def _open_folder(path: Path) -> Folder:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    why = _untrusted(os.fstat(fd))
    if why is not None:
        os.close(fd)
        raise PermissionError(f"{path} is {why}")
    return Folder(path, fd)


@functools.lru_cache(maxsize=None)
def _folder() -> Folder:
    """The user's cache folder where only this user can write to it, else a private temporary folder."""
    cache = _cache_dir()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(cache, 0o700)
        except FileExistsError:
            pass
        return _open_folder(cache)
    except OSError as e:
        private = Path(tempfile.mkdtemp(prefix="nas_logger-"))
        atexit.register(shutil.rmtree, private, ignore_errors=True)
        logger.warning("compiled kernels are not cached: %s; each process builds them in %s (use a cache folder "
                       "of your own, mode 0700, through XDG_CACHE_HOME)", e, private)
        return _open_folder(private)


class _Corrupt(Exception):
    """A cached library that must not be loaded (not this user's, or its bytes differ from its name's hash)."""


def _read_verified(folder: Folder, name: str) -> None:
    """Raise :class:`_Corrupt` unless ``name`` in ``folder`` is this user's regular file, writable by no one
    else, whose bytes hash to the digest its name ends in."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder.fd)
    try:
        st = os.fstat(fd)
        why = "not a regular file" if not stat.S_ISREG(st.st_mode) else _untrusted(st)
        if why is not None:
            raise _Corrupt(f"{folder.path / name} is {why}")
        with os.fdopen(os.dup(fd), "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:_HASH_CHARS]
    finally:
        os.close(fd)
    if not name.endswith(f"-{digest}.so"):
        raise _Corrupt(f"{folder.path / name} does not hash to its name ({st.st_size} bytes, truncated or altered)")


def _install(folder: Folder, data: bytes, prefix: str) -> str:
    """Write ``data`` into ``folder`` as ``<prefix>-<its sha256>.so``: under a temporary name, then renamed."""
    name = f"{prefix}-{hashlib.sha256(data).hexdigest()[:_HASH_CHARS]}.so"
    partial = f".{prefix}-{secrets.token_hex(8)}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=folder.fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
    finally:
        try:
            os.unlink(partial, dir_fd=folder.fd)
        except FileNotFoundError:
            pass
    return name


def _compile(source: Path, command: list[str], flags: list[str]) -> bytes:
    """The shared library of ``source``, compiled in a private scratch folder."""
    with tempfile.TemporaryDirectory(prefix="nas_logger-build-") as scratch:
        out = os.path.join(scratch, source.stem + ".so")
        subprocess.run([*command, *flags, str(source), "-o", out, "-lm"], check=True, capture_output=True,
                       timeout=120)
        return Path(out).read_bytes()


def _failure(e: Exception) -> str:
    detail = (getattr(e, "stderr", b"") or b"").decode(errors="replace").strip()
    return f"{e}{': ' + detail[-300:] if detail else ''}"


def _library_name(folder: Folder, source: Path, command: list[str], flags: list[str], notes: list[str]) -> str:
    """The name of a verified library of ``source`` built with ``command`` and ``flags`` in ``folder``, built
    there first when none is; a cached one that fails verification is removed (and said in ``notes``)."""
    key = hashlib.sha256(source.read_bytes() + shlex.join([*command, *flags]).encode()).hexdigest()[:16]
    prefix = f"{source.stem}-{key}"
    for name in sorted(n for n in os.listdir(folder.fd) if n.startswith(prefix + "-") and n.endswith(".so")):
        try:
            _read_verified(folder, name)
            return name
        except _Corrupt as e:
            notes.append(f"{e}: not loaded, built again")
            os.unlink(name, dir_fd=folder.fd)
    return _install(folder, _compile(source, command, flags), prefix)


@functools.lru_cache(maxsize=None)
def load(source: str, what: str, instead: str, hold_gil: bool = False,
         symbols: Sequence[str] = ()) -> ctypes.CDLL | None:
    """The library of the package's C file ``source``, or None with one warning ("``what`` unavailable
    (why); ``instead``") where it cannot be built or loaded or lacks one of the functions ``symbols``.
    ``hold_gil``: its calls keep the GIL (for short calls from daemon threads, which must not be inside the
    library while the interpreter exits)."""
    command, chosen = _compiler()
    path = Path(__file__).with_name(source)
    notes: list[str] = []
    try:
        folder = _folder()
        try:
            name = _library_name(folder, path, command, _flags(), notes)
        except subprocess.CalledProcessError as e:
            # A compiler that rejects the optimising flags still builds the portable code.
            name = _library_name(folder, path, command, PORTABLE_FLAGS, notes)
            logger.info("%s built with %s only (%s)", what, " ".join(PORTABLE_FLAGS), _failure(e))
        _read_verified(folder, name)  # again: what is loaded is what was checked, through the same folder
        try:
            library = (ctypes.PyDLL if hold_gil else ctypes.CDLL)(folder.loadable(name))
            for symbol in symbols:
                getattr(library, symbol)
        except (OSError, AttributeError) as e:
            why = str(e).replace(folder.loadable(name), str(folder.path / name))
            return _unavailable(what, instead, notes, why if str(folder.path / name) in why else f"{name}: {why}")
    except FileNotFoundError as e:
        if e.filename == command[0] and not chosen:  # no compiler installed: the usual case without one
            logger.info("%s unavailable (no C compiler: %s not found); %s", what, command[0], instead)
            return None
        return _unavailable(what, instead, notes, _failure(e))
    except subprocess.SubprocessError as e:
        return _unavailable(what, instead, notes, f"the compiler {shlex.join(command)!r} failed: {_failure(e)}")
    except (OSError, _Corrupt) as e:
        return _unavailable(what, instead, notes, _failure(e))
    if notes:
        logger.warning("%s: %s", what, "; ".join(notes))
    return library


def _unavailable(what: str, instead: str, notes: list[str], why: str) -> None:
    logger.warning("%s unavailable (%s); %s", what, "; ".join([*notes, why]), instead)
    return None
