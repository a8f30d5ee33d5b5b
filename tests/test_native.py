"""The compiled kernels' cache: only libraries this user built are loaded; a bad one falls back with one warning.

Each case runs in a fresh Python process (the loader's answers are cached per process), with its own
``XDG_CACHE_HOME``, and checks its return code: a truncated library mapped by dlopen would kill it with
SIGBUS rather than raise.
"""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler: nothing is compiled or loaded")

COMPILER = shutil.which("cc") or shutil.which("gcc")
SOURCES = Path(__file__).parent.parent / "nas_logger"

# Both libraries in use, as a training loop uses them: the kernel, and the checksums of watch()'s writer.
USE_BOTH = (
    "import logging, sys, torch\n"
    "logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')\n"
    "from torch import nn\n"
    "import nas_logger\n"
    "from nas_logger import fused, nas_sparsity, writer\n"
    "a = torch.randn(3, 40, 5, 7) * 4\n"
    "s = nas_sparsity(a)\n"
    "exact = torch.softmax(a.double(), 1)\n"
    "reference = 1 - torch.exp(-(exact * exact.log()).sum(1)) / 40\n"
    "assert torch.allclose(s.double(), reference, atol=1e-6), (s, reference)\n"
    "model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())\n"
    "with nas_logger.watch(model, sys.argv[1], probe=torch.randn(2, 1, 6, 6)) as monitor:\n"
    "    monitor.log(1)\n"
    "print(fused.available(), writer.c_masked_crc32c() is not None)\n"
)


def run(code: str, cache: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, str(tmp_path / "log")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "XDG_CACHE_HOME": str(cache), **env})


def libraries(cache: Path) -> list[Path]:
    return sorted((cache / "nas_logger").glob("*.so"))


def build_cache(cache: Path, tmp_path: Path) -> list[Path]:
    """A cache that holds both libraries, built by the package itself."""
    result = run(USE_BOTH, cache, tmp_path)
    assert result.returncode == 0 and result.stdout.split() == ["True", "True"], result.stderr
    built = libraries(cache)
    assert [p.name.split("-")[0] for p in built] == ["crc32c", "nas_fused"]
    return built


def compile_library(tmp_path: Path, name: str, code: str) -> bytes:
    source = tmp_path / f"{name}.c"
    source.write_text(code)
    subprocess.run([COMPILER, "-O1", "-shared", "-fPIC", str(source), "-o", str(tmp_path / f"{name}.so")],
                   check=True, capture_output=True)
    return (tmp_path / f"{name}.so").read_bytes()


def self_consistent_name(legit: Path, data: bytes) -> str:
    """The name a library of bytes ``data`` would have in the cache in place of ``legit``: the same source,
    compiler and flags, its own content hash (so that only the folder's checks can refuse it)."""
    prefix = legit.name.rsplit("-", 1)[0]
    return f"{prefix}-{hashlib.sha256(data).hexdigest()[:32]}.so"


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("WARNING")]


@pytest.mark.parametrize("unsafe", ["writable by others", "another user's"])
def test_a_library_planted_in_a_cache_someone_else_can_write_never_runs(tmp_path, unsafe):
    """A planted library whose constructor would write a marker: it is never opened; the kernels are built
    in a private temporary folder instead, and one warning names the unsafe folder."""
    if unsafe == "another user's" and os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    legit = build_cache(tmp_path / "trusted", tmp_path)
    marker = tmp_path / "planted-code-ran"
    code = "".join(p.read_text() for p in (SOURCES / "nas_fused.c", SOURCES / "crc32c.c")) + (
        "#include <stdio.h>\n"
        f'__attribute__((constructor)) static void planted(void) {{ fclose(fopen("{marker}", "w")); }}\n')
    planted = compile_library(tmp_path, "planted", code)
    shared = tmp_path / "shared-home"
    folder = shared / "nas_logger"
    folder.mkdir(parents=True)
    for path in legit:  # under the names the cache uses, and under names that match its own bytes
        for name in (path.name, self_consistent_name(path, planted)):
            (folder / name).write_bytes(planted)
    if unsafe == "writable by others":
        for p in (shared, folder, *folder.iterdir()):
            p.chmod(0o777)
    else:
        for p in (shared, folder, *folder.iterdir()):
            os.chown(p, 65534, 65534)
    result = run(USE_BOTH, shared, tmp_path)
    assert result.returncode == 0, result.stderr
    assert not marker.exists(), "the planted library's constructor ran"
    assert result.stdout.split() == ["True", "True"]  # built privately, not lost
    warned = warnings_in(result.stderr)
    assert len(warned) == 1 and str(folder) in warned[0] and "not cached" in warned[0], result.stderr
    assert ("writable by others" if unsafe == "writable by others" else "owned by uid 65534") in warned[0]


def test_a_truncated_cached_library_is_built_again_never_mapped(tmp_path):
    """Truncated libraries of both kernels, also with NAS_LOGGER_FUSED=0 (the checksums' library at watch()):
    no SIGBUS; each is found, removed and built again with one warning that names it."""
    cache = tmp_path / "cache"
    for fused_env in ("0", "1"):
        for path in build_cache(cache, tmp_path):
            path.write_bytes(path.read_bytes()[:4096])
        result = run(USE_BOTH, cache, tmp_path, NAS_LOGGER_FUSED=fused_env)
        assert result.returncode == 0, (result.returncode, result.stderr)
        assert result.stdout.split() == [str(fused_env == "1"), "True"]
        warned = warnings_in(result.stderr)
        assert len(warned) == (2 if fused_env == "1" else 1), result.stderr
        assert all("truncated or altered" in w and "built again" in w for w in warned), result.stderr
        loaded = libraries(cache) if fused_env == "1" else [p for p in libraries(cache) if "crc32c" in p.name]
        assert all(p.stat().st_size > 4096 for p in loaded)  # what was loaded is cached whole again


def test_a_library_without_the_kernel_functions_falls_back_to_eager_with_one_warning(tmp_path):
    cache = tmp_path / "cache"
    legit = build_cache(cache, tmp_path)
    empty = compile_library(tmp_path, "empty", "int nothing(void) { return 0; }\n")
    for path in legit:
        path.unlink()
        (path.parent / self_consistent_name(path, empty)).write_bytes(empty)
        (path.parent / self_consistent_name(path, empty)).chmod(0o600)
    result = run(USE_BOTH, cache, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]  # eager NAS (checked in the child), Python checksums
    warned = sorted(warnings_in(result.stderr))
    assert len(warned) == 2, result.stderr
    assert "C checksum of event records unavailable" in warned[0] and "undefined symbol: nas_masked_crc32c" in warned[0]
    assert "fused NAS kernel unavailable" in warned[1] and "undefined symbol: nas_" in warned[1]
    assert all(str(cache / "nas_logger") in w for w in warned), result.stderr  # the file, by its real path


def test_a_compiler_command_with_arguments_builds_the_kernels(tmp_path):
    result = run(USE_BOTH, tmp_path / "cache", tmp_path, CC=f"env LC_ALL=C {COMPILER}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
    assert warnings_in(result.stderr) == []


def test_a_failing_compiler_gives_one_warning_per_kernel_naming_its_command(tmp_path):
    result = run(USE_BOTH, tmp_path / "cache", tmp_path, CC="env /nonexistent/cc")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
    warned = warnings_in(result.stderr)
    assert len(warned) == 2, result.stderr
    assert all("'env /nonexistent/cc' failed" in w and "/nonexistent/cc" in w for w in warned)


def test_the_cache_folder_is_created_private_and_holds_only_whole_libraries(tmp_path):
    cache = tmp_path / "cache"
    build_cache(cache, tmp_path)
    assert (cache / "nas_logger").stat().st_mode & 0o777 == 0o700
    for path in libraries(cache):
        assert path.stat().st_mode & 0o077 == 0
        assert path.name.endswith(f"-{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}.so")
    assert [p for p in (cache / "nas_logger").iterdir() if p.suffix != ".so"] == []  # no partial file left
