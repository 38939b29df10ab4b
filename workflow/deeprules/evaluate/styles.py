"""One look per model in every test figure, so a reader can tell the models apart.

A reader compares three models above all (Tip 1): the CNN, the best tuned
baseline and the shortcut control (trivial features only). Those three get
fixed, distinct colours (Okabe-Ito, safe for colour-blind readers) and line
styles, drawn on top; every other model is muted by its role (grey, solid for
tuned baselines, dotted for controls). The colours go into each PNG's
metadata (`Description`, JSON model -> style) so a test can check them
without reading pixels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from deeprules.contracts import ROLE_BASELINE, ROLE_CNN, ROLE_CONTROL, ROLE_SCRATCH
from deeprules.figures import save_figure

# The trivial-feature control, as deeprules.baselines.controls names it.
SHORTCUT_CONTROL = "control_shortcut"


@dataclass(frozen=True)
class Style:
    """How one model is drawn: colour, line style and width, and what it is to the reader."""

    colour: str
    line: str  # matplotlib linestyle
    width: float
    emphasised: bool
    part: str  # the model's part in the comparison, shown in legends and titles


CNN_STYLE = Style("#D55E00", "-", 2.6, True, "CNN")
BEST_BASELINE_STYLE = Style("#0072B2", "--", 2.2, True, "best tuned baseline")
SHORTCUT_STYLE = Style("#009E73", "-.", 2.2, True, "shortcut control")
MUTED_STYLES = {
    ROLE_BASELINE: Style("#8c8c8c", "-", 1.0, False, "other tuned baseline"),
    ROLE_CONTROL: Style("#b5b5b5", ":", 1.3, False, "other control"),
    ROLE_CNN: Style("#8c8c8c", "-", 1.0, False, "other CNN"),
    ROLE_SCRATCH: Style("#E69F00", "--", 1.6, False, "CNN without pre-training"),
}


def model_styles(roles: dict[str, str], best_baseline: str | None) -> dict[str, Style]:
    """Every model's style, in the order a reader wants them listed: the CNN, the best
    tuned baseline, the shortcut control, then the muted models as given."""
    styles = {}
    for model, role in roles.items():
        if role == ROLE_CNN:
            styles[model] = CNN_STYLE
        elif model == best_baseline:
            styles[model] = BEST_BASELINE_STYLE
        elif model == SHORTCUT_CONTROL:
            styles[model] = SHORTCUT_STYLE
        else:
            styles[model] = MUTED_STYLES[role]
    first = (CNN_STYLE, BEST_BASELINE_STYLE, SHORTCUT_STYLE)
    ordered = sorted(styles, key=lambda m: first.index(styles[m]) if styles[m].emphasised else 3)
    return {model: styles[model] for model in ordered}


def legend_label(model: str, style: Style) -> str:
    """'best tuned baseline: random_forest' for an emphasised model, the name otherwise."""
    if not style.emphasised or model.lower() == style.part.lower():
        return model if not style.emphasised else style.part
    return f"{style.part}: {model}"


def save_styled_figure(figure: plt.Figure, path: str | Path, styles: dict[str, Style]) -> None:
    """Save with each model's style written into the PNG's `Description` text chunk."""
    key = json.dumps({model: asdict(style) for model, style in styles.items()}, sort_keys=True)
    save_figure(figure, path, description=key)
