"""Locating and safely resolving the frontend's static files (``frontend/`` at the repository root).

In a wheel the files are installed as package data under ``nas_tb_plugin/frontend`` (setup.py maps the
package ``nas_tb_plugin.frontend`` to ``frontend/``); in a source checkout or an editable install they
are read from ``frontend/`` beside the package.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}


def frontend_dir() -> Path | None:
    """The directory holding ``index.js``, or ``None`` when no frontend is installed."""
    candidates = []
    try:
        spec = importlib.util.find_spec("nas_tb_plugin.frontend")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    here = Path(__file__).resolve().parent
    candidates += [here / "frontend", here.parent / "frontend"]
    for candidate in candidates:
        if (candidate / "index.js").is_file():
            return candidate
    return None


def resolve(root: Path | None, relative: str) -> tuple[Path, str] | None:
    """(file, content type) of ``relative`` under ``root``; ``None`` for anything that is not a plain
    file of a known type strictly inside ``root`` (``..``, absolute paths, backslashes, NUL, links out)."""
    if root is None or not relative or "\\" in relative or "\0" in relative or relative.startswith("/"):
        return None
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    content_type = CONTENT_TYPES.get(Path(parts[-1]).suffix.lower())
    if content_type is None:
        return None
    try:  # a name too long for the file system (OSError) or a link loop (RuntimeError) is just not found
        root = root.resolve()
        path = root.joinpath(*parts).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
    except (OSError, RuntimeError):
        return None
    return path, content_type
