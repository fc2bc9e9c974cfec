"""MkDocs hook: pages that live outside ``docs/`` join the site from where they are kept.

The tutorial notebooks stay in ``notebooks/`` (papermill runs them there; mkdocs-jupyter
renders them, not executed), the benchmark tables in ``benchmarks/`` (the scripts write
them there) and the pretrained models' cards beside their weights, so the site reads them in place instead of holding copies that drift.
"""
from __future__ import annotations

import pathlib
import re

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTSIDE = ("notebooks/*.ipynb", "benchmarks/README.md", "benchmarks/results/*.md",
           "hypermorph_nb/pretrained/*/README.md")


@event_priority(100)  # before mkdocs-jupyter, which turns the .ipynb files into pages
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add each file of :data:`OUTSIDE` under its repository path."""
    for pattern in OUTSIDE:
        for path in sorted(ROOT.glob(pattern)):
            uri = path.relative_to(ROOT).as_posix()
            files.append(File(uri, src_dir=str(ROOT), dest_dir=config.site_dir,
                              use_directory_urls=config.use_directory_urls))
    return files


# Docstrings name objects with Sphinx roles (:func:`~hypermorph_nb.register`), which Markdown
# leaves as text: turn them into code, linked by mkdocs-autorefs where the path is absolute.
ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|exc|obj):<code>~?([\w.]+)</code>")


def _role(match: re.Match[str]) -> str:
    path = match.group(1)
    shown = path.rsplit(".", 1)[-1] if path.startswith((".", "hypermorph_nb.")) else path
    code = f"<code>{shown.lstrip('.') or path}</code>"
    if path.startswith("hypermorph_nb"):
        return f'<autoref identifier="{path}" optional>{code}</autoref>'
    return code


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the Sphinx roles of rendered docstrings by (linked) code."""
    return ROLE.sub(_role, html)
