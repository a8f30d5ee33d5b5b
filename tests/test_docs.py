"""The docs say what the code and the kept data give: the reproduction tables regenerate byte for byte, the
tests that docs/guarantees.md names exist, and the reference pages speak of the code as it is."""
import ast
import re
from pathlib import Path

import pytest

from training.report import update_page

ROOT = Path(__file__).resolve().parent.parent
# The pages that describe the product as it is (CHANGELOG.md holds what changed between versions).
REFERENCE = ["README.md", "docs/sdk.md", "docs/http-api.md", "docs/event-format.md", "docs/guarantees.md",
             "docs/benchmarks.md", "docs/reproduction.md"]


def test_the_reproduction_tables_are_what_the_kept_curves_give():
    page = (ROOT / "docs/reproduction.md").read_text(encoding="utf-8")
    assert page.count("<!-- report:") >= 4
    assert update_page(page) == page, "run: python -m training.report --update docs/reproduction.md"


def _tests_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_test_the_guarantees_name_exists():
    text = (ROOT / "docs/guarantees.md").read_text(encoding="utf-8")
    named = []
    for cell in re.findall(r"\| ([^|]*`test_[^|]*) \|\n", text):
        current = None
        for ref in re.findall(r"`([^`]+)`", cell):
            file, _, test = ref.partition("::")
            current = file or current
            named.append((current, test))
    assert len(named) >= 20
    for file, test in named:
        assert (ROOT / "tests" / file).is_file(), file
        if test:
            assert test in _tests_of(ROOT / "tests" / file), f"{file}::{test}"


@pytest.mark.parametrize("page", REFERENCE)
def test_reference_pages_speak_of_the_code_as_it_is(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    assert not re.search(r"session|main's|this branch|issue \d", text, re.IGNORECASE)
