"""The frontend's module graph, read from the files' import lines: a view file never imports another view's
file (shared drawing lives in chart.js), and index.js names every module so that the browser fetches them
all in one round."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
# A view's drawing file, and the modules that hold one view's state or controls beside it.
VIEWS = {"lineplot.js", "stripeplot.js", "heatmap.js", "overlay.js"}
VIEW_PARTS = {"heatmapview.js": {"heatmap.js"}, "toolbar.js": set(), "sidebar.js": set()}


def imports(name: str) -> set[str]:
    text = (FRONTEND / name).read_text(encoding="utf-8")
    found = re.findall(r'^import\s[^;]*?from\s+"([^"]+)"|^import\s+"([^"]+)"', text, re.M)
    return {Path(named or bare).name for named, bare in found}


def test_the_import_reader_sees_the_apps_imports():
    assert {"heatmapview.js", "toolbar.js", "lineplot.js", "chart.js"} <= imports("app.js")


@pytest.mark.parametrize("name", sorted(VIEWS | set(VIEW_PARTS)))
def test_a_view_file_imports_no_other_views_file(name):
    allowed = VIEW_PARTS.get(name, set())
    assert imports(name) & VIEWS <= allowed, f"{name} imports {sorted(imports(name) & VIEWS - allowed)}"


def test_index_names_every_module_of_the_tab():
    modules = {p.name for p in FRONTEND.glob("*.js")} - {"index.js"}
    assert imports("index.js") == modules
