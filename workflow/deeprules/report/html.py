"""Writing the pages: the reviewer's HTML page (Jinja2 template in workflow/report)
and Markdown files with an HTML twin, every figure embedded."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jinja2
import markdown

from deeprules.io import atomic_write

TEMPLATES = Path(__file__).resolve().parents[2] / "report"


def figures(paths: list[Path]) -> list[dict[str, str]]:
    """The given PNGs (each results/<dataset>/<stage>/<name>.png), embedded so the page
    needs no other file; sorted by path, so the page does not depend on the order of
    the rule's inputs."""
    found = []
    for path in sorted(paths):
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        found.append({"stage": path.parent.name, "name": path.stem.replace("_", " "), "data": data})
    return found


def render_html(context: dict[str, Any], path: Path) -> None:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    page = environment.get_template("reviewer_report.html.j2").render(**context)
    with atomic_write(path) as handle:
        handle.write(page)


def markdown_to_html(text: str) -> str:
    return markdown.markdown(text, extensions=["tables"])


def write_markdown_and_html(text: str, md_path: Path, html_path: Path, title: str) -> None:
    with atomic_write(md_path) as handle:
        handle.write(text)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        "</head><body>\n" + markdown_to_html(text) + "\n</body></html>\n"
    )
    with atomic_write(html_path) as handle:
        handle.write(page)
