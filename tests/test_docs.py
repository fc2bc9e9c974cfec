"""The documentation: the site builds without a broken reference, the README is short and says what runs.

Every ```python snippet of README.md is executed here, as written, in a fresh folder; every
``hypermorph-nb`` command of its ```bash snippets is checked against the command's own
``--help`` (the subcommand exists, each ``--option`` is one of its options).
"""
from __future__ import annotations

import pathlib
import re
import shlex
import shutil
import subprocess
import os
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
IXI_RAW = ROOT.parent / "shared" / "data" / "ixi_raw"
#: The raw scans the README's snippets name, and the IXI scans the test gives them.
RAW_SCANS = {"moving.nii.gz": "IXI012-HH-1211_T1.nii.gz", "fixed.nii.gz": "IXI015-HH-1258_T1.nii.gz"}
MAX_README_LINES = 200


def snippets(language: str, text: str | None = None) -> list[str]:
    """The bodies of the fenced ``language`` blocks of ``text`` (default: README.md)."""
    text = README.read_text() if text is None else text
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def test_snippets_finds_each_fenced_block_of_a_language():
    text = "intro\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = 2\nc = 3\n```\n"
    assert snippets("python", text) == ["a = 1\n", "b = 2\nc = 3\n"]
    assert snippets("bash", text) == ["ls\n"]


def test_the_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: a broken link, reference or docstring fails it."""
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                             "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**_environ(), "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    site = tmp_path / "site"
    # the pages that come from outside docs/: the notebooks and the benchmark tables
    for page in ("notebooks/01_voxelmorph_baseline/index.html", "benchmarks/index.html",
                 "benchmarks/results/amortization/index.html", "reference/registration/index.html",
                 "hypermorph_nb/pretrained/ixi-t1-2mm/index.html"):
        assert (site / page).is_file(), f"{page} is missing from the built site"
    # the API reference renders docstrings, not just headings
    assert "lambda_sweep" in (site / "reference/top-level/index.html").read_text()


def _environ() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_the_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_the_readme_links_to_files_that_exist():
    targets = re.findall(r"\]\(((?!https?:)[^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    assert targets, "the README should link into the documentation"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert missing == []


@pytest.mark.parametrize("number", range(len(snippets("python"))))
def test_readme_python_snippet_runs(number, tmp_path, monkeypatch):
    code = snippets("python")[number]
    for name, scan in RAW_SCANS.items():
        if f'"{name}"' in code:
            if not (IXI_RAW / scan).is_file():
                pytest.skip(f"needs the raw IXI scan {IXI_RAW / scan} for {name}")
            shutil.copy(IXI_RAW / scan, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md python snippet {number}", "exec"), {"__name__": "__readme__"})
    if "register_scans" in code:
        for written in ("out/moved.nii.gz", "out/transform.nii.gz", "out/registration.json"):
            assert (tmp_path / written).is_file(), written


def _commands(block: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments and prompts dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def _help(command: str) -> str | None:
    """``hypermorph-nb COMMAND --help``, or None when there is no such command."""
    result = subprocess.run([sys.executable, "-m", "hypermorph_nb.cli", command, "--help"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env=_environ())
    return result.stdout if result.returncode == 0 else None


def bash_problems(block: str) -> list[str]:
    """What is wrong with the commands of a bash block: unknown subcommands, options, markers, extras."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    problems = []
    for words in _commands(block):
        program = pathlib.PurePath(words[0]).name
        if program == "hypermorph-nb":
            options = _help(words[1])
            if options is None:
                problems.append(f"no command `hypermorph-nb {words[1]}`")
                continue
            problems += [f"`hypermorph-nb {words[1]}` has no {w}" for w in words[2:]
                         if w.startswith("--") and not re.search(rf"{re.escape(w.split('=')[0])}\b", options)]
        elif program == "python" and words[1:3] == ["-m", "pytest"]:
            problems += [f"no pytest marker {m}" for m in (words[4:5] if words[3:4] == ["-m"] else [])
                         if not re.search(rf'^\s*"{m}:', pyproject, re.M)]
        elif program == "python3" and words[1:3] == ["-m", "venv"]:
            problems += [f"no extra {extra} in pyproject.toml"
                         for extras in re.findall(r"\.\[([^\]]+)\]", " ".join(words))
                         for extra in extras.split(",") if not re.search(rf"^{extra} = \[", pyproject, re.M)]
        else:
            problems.append(f"not a command this test knows how to check: {' '.join(words)}")
    return problems


def test_readme_bash_commands_exist():
    blocks = snippets("bash")
    assert sum(len(_commands(block)) for block in blocks) >= 4
    assert [problem for block in blocks for problem in bash_problems(block)] == []


def test_bash_problems_finds_a_wrong_command_option_marker_and_extra():
    block = ("hypermorph-nb regster --out x\nhypermorph-nb demo --out x \\\n    --no-such-option 1\n"
             "python -m pytest -m fast\npython3 -m venv .venv && .venv/bin/pip install -e \".[dev,gpus]\"\n")
    assert bash_problems(block) == ["no command `hypermorph-nb regster`",
                                    "`hypermorph-nb demo` has no --no-such-option",
                                    "no pytest marker fast", "no extra gpus in pyproject.toml"]
