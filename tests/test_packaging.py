"""The wheel holds the SDK, the plugin and the frontend it serves, and nothing with a generic top-level name:
`training/` (the paper's experiments) runs from a checkout and is not installed."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy of what setup.py packages, so that no build/ folder of the checkout (stale files of
    # an earlier build) goes into it, and the checkout stays clean.
    source = tmp_path_factory.mktemp("source")
    for name in ("setup.py", "README.md"):
        shutil.copy(ROOT / name, source)
    for folder in ("nas_logger", "nas_tb_plugin", "frontend"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    # No build isolation: setuptools and wheel of this environment build it, offline.
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(out), str(source)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = out.glob("nas_tensorboard-*.whl")
    with zipfile.ZipFile(built) as z:
        yield z


def test_the_wheel_installs_only_nas_logger_and_nas_tb_plugin(wheel):
    top = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"nas_logger", "nas_tb_plugin"}


def test_the_wheel_carries_the_frontend_and_the_kernels_sources(wheel):
    names = set(wheel.namelist())
    frontend = sorted(p.relative_to(ROOT / "frontend").as_posix() for p in (ROOT / "frontend").rglob("*.js"))
    assert frontend and {f"nas_tb_plugin/frontend/{f}" for f in frontend} <= names
    assert {"nas_logger/nas_fused.c", "nas_logger/crc32c.c"} <= names


def test_the_wheel_registers_the_plugin_and_no_command(wheel):
    (entry_points,) = (n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert "[tensorboard_plugins]\nnas = nas_tb_plugin.plugin:NASLoader" in text
    assert "console_scripts" not in text
