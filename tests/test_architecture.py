"""The package's shape: no private names shared across modules, the site's package map matches the tree."""
import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "hypermorph_nb"
PACKAGE_MAP = PACKAGE.parent / "docs" / "design" / "layout.md"


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def _private_imports(source, where):
    """``'where:line imports _name'`` for every ``from x import _name`` in ``source``."""
    return [f"{where}:{node.lineno} imports {alias.name}"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if alias.name.startswith("_") and not alias.name.startswith("__")]


def test_no_module_imports_a_private_name_from_another():
    offenders = [hit for path in _modules()
                 for hit in _private_imports(path.read_text(), path.relative_to(PACKAGE.parent))]
    assert offenders == [], "share it as a public name in its package instead:\n" + "\n".join(offenders)


def test_the_private_name_check_catches_one():
    source = "from .evaluation.sweeps import _hidden, shown\nfrom . import __version__\n"
    assert _private_imports(source, "x.py") == ["x.py:1 imports _hidden"]


def _package_map():
    text = PACKAGE_MAP.read_text()
    match = re.search(r"<!-- package map -->\n```\n(.*?)```", text, re.S)
    assert match, "docs/design/layout.md needs the package map between '<!-- package map -->' and a code fence"
    return match.group(1)


def test_package_map_matches_the_tree():
    listed = set(re.findall(r"^  ([a-z_]+(?:/|\.py))", _package_map(), re.M))
    actual = {p.name + "/" for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    actual |= {p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    assert listed == actual


@pytest.mark.parametrize("package", sorted(p.name for p in PACKAGE.iterdir()
                                           if p.is_dir() and (p / "__init__.py").exists()))
def test_every_module_of_a_package_is_in_the_package_map(package):
    mapped = _package_map()
    block = re.search(rf"^  {package}/.*?(?=^  \S|^\S|\Z)", mapped, re.S | re.M)
    assert block, f"{package}/ is missing from the package map (docs/design/layout.md)"
    modules = {p.stem for p in (PACKAGE / package).glob("*.py") if p.stem != "__init__"}
    named = set(re.findall(r"\b([a-z_]+)\.py\b", block.group(0)))
    assert modules == named, f"{package}/: the package map lists {sorted(named)}, the tree has {sorted(modules)}"
