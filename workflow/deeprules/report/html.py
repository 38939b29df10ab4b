"""Writing the pages: the reviewer's HTML page (Jinja2 template in workflow/report)
and Markdown files with an HTML twin, every figure embedded."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import jinja2
import markdown
from markupsafe import Markup

from deeprules.io import atomic_write

TEMPLATES = Path(__file__).resolve().parents[2] / "report"


# The stages in the order they run: the page shows their figures in this order.
STAGE_ORDER = ("explore", "split", "baselines", "cnn", "evaluate", "interpret")


def figures(paths: list[Path]) -> list[dict[str, str]]:
    """The given PNGs (each results/<dataset>/<stage>/<name>.png), embedded so the page
    needs no other file; in the order the stages run, then by name, so the page does
    not depend on the order of the rule's inputs."""

    def position(path: Path) -> tuple[int, str]:
        stage = path.parent.name
        return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), str(path))

    found = []
    for path in sorted(paths, key=position):
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        found.append({"stage": path.parent.name, "name": path.stem.replace("_", " "), "data": data})
    return found


def render_html(
    context: dict[str, Any], path: Path, template: str = "reviewer_report.html.j2"
) -> None:
    """A page from a template in workflow/report; every value is escaped unless it is
    Markup (see embedded_markdown)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    page = environment.get_template(template).render(**context)
    with atomic_write(path) as handle:
        handle.write(page)


def markdown_to_html(text: str) -> str:
    """Markdown (with tables) to HTML; the text is escaped first, so a name or a note
    containing '<' shows as written instead of becoming markup."""
    return markdown.markdown(html.escape(text, quote=False), extensions=["tables"])


def embedded_markdown(text: str, heading_shift: int = 0) -> Markup:
    """Markdown rendered for a section of the reviewer's page: marked safe, so the page
    shows headings and tables rather than their tags, with headings moved down
    `heading_shift` levels (the card's h1 becomes the page's h2)."""

    def shifted(match: re.Match[str]) -> str:
        return f"<{match[1]}h{min(int(match[2]) + heading_shift, 6)}"

    return Markup(re.sub(r"<(/?)h([1-6])", shifted, markdown_to_html(text)))


def write_markdown_and_html(text: str, md_path: Path, html_path: Path, title: str) -> None:
    with atomic_write(md_path) as handle:
        handle.write(text)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        "</head><body>\n" + markdown_to_html(text) + "\n</body></html>\n"
    )
    with atomic_write(html_path) as handle:
        handle.write(page)
