"""The packages depend in one direction only; this reads every import statement to keep it so.

    preferthinker  <-  synthpref  <-  generation  <-  training  <-  ptgen
                                      comfyui_nodes (uses preferthinker, synthpref, generation)

Nothing imports `ptgen`, `comfyui_nodes`, `tests`, `examples` or `benchmarks` from the library.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("preferthinker", "synthpref", "generation", "training", "ptgen", "comfyui_nodes")
FORBIDDEN_ALWAYS = {"tests", "examples", "benchmarks"}

# package -> the project packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "preferthinker": set(),
    "synthpref": {"preferthinker"},
    "generation": {"preferthinker"},
    "training": {"preferthinker", "synthpref", "generation"},
    "ptgen": {"preferthinker", "synthpref", "generation", "training"},
    "comfyui_nodes": {"preferthinker", "synthpref", "generation"},
}


def imported_top_levels(path: Path) -> set[str]:
    """Top-level names of every import in a file, including imports inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(root: Path = ROOT) -> list[str]:
    found = []
    project = set(PACKAGES) | FORBIDDEN_ALWAYS
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for name in imported_top_levels(path) & project:
                if name != package and name not in ALLOWED[package]:
                    found.append(f"{path.relative_to(root)} imports {name}")
    return found


def test_every_package_imports_only_downward():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path):
    # A copy of the rule on a throwaway tree: an import inside a function counts too.
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    (tmp_path / "generation" / "x.py").write_text(
        "def f():\n    from training.sft import train_sft\n"
    )
    (tmp_path / "preferthinker" / "y.py").write_text("import ptgen.cli\n")
    assert sorted(violations(tmp_path)) == [
        "generation/x.py imports training",
        "preferthinker/y.py imports ptgen",
    ]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_exists(package):
    assert (ROOT / package / "__init__.py").is_file()
