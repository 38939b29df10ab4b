"""Check 3: residue composition position by position from both ends, e.g. a start
methionine, a tag or a primer present in one class only."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deeprules import shortcuts
from deeprules.explore.metadata import cramers_v
from deeprules.explore.verdicts import make_check, verdict


def position_composition(
    encoded: shortcuts.EncodedSequences, labels: pd.Series, settings: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Residue frequencies per class at each position from both ends, with Cramér's V.

    A position is scanned only while every class still has
    `min_sequences_per_position` sequences reaching it.
    """
    letters = np.array([*encoded.alphabet, "other"])
    classes = sorted(labels.unique())
    label_values = labels.to_numpy()
    frequency_rows, association_rows = [], []
    for end in ("start", "end"):
        for position in range(1, settings["position_window"] + 1):
            codes = shortcuts.residues_at(encoded, position, from_end=end == "end")
            reaches = codes >= 0
            per_class = pd.Series(label_values[reaches]).value_counts()
            fewest = per_class.reindex(classes, fill_value=0).min()
            if fewest < settings["min_sequences_per_position"]:
                break
            contingency = pd.crosstab(label_values[reaches], letters[codes[reaches]])
            p_value, v = cramers_v(contingency)
            association_rows.append(
                {
                    "end": end,
                    "position": position,
                    "sequences": int(reaches.sum()),
                    "cramers_v": round(v, 4),
                    "chi_square_p": p_value,
                }
            )
            fractions = contingency.div(contingency.sum(axis=1), axis=0)
            for label, row in fractions.iterrows():
                for residue, fraction in row.items():
                    frequency_rows.append(
                        {
                            "end": end,
                            "position": position,
                            "label": label,
                            "residue": residue,
                            "fraction": round(float(fraction), 4),
                        }
                    )
    return pd.DataFrame(frequency_rows), pd.DataFrame(association_rows)


def position_check(association: pd.DataFrame, settings: dict[str, Any]) -> dict[str, Any]:
    """Check 3: the most class-specific position (e.g. a start methionine in one class only)."""
    thresholds = {"warn": settings["position_v_warn"], "fail": settings["position_v_fail"]}
    if association.empty:
        return make_check(
            "position_composition",
            "position",
            "largest bias-corrected Cramér's V over positions",
            0.0,
            thresholds,
            "pass",
            "Too few sequences per class reach any position to compare positions.",
        )
    worst = association.loc[association["cramers_v"].idxmax()]
    v, side = float(worst["cramers_v"]), "start" if worst["end"] == "start" else "end"
    result = verdict(v, **thresholds)
    where = f"position {int(worst['position'])} from the {side}"
    explanation = (
        f"The residue at {where} differs strongly between classes (Cramér's V {v:.2f}); if it "
        "reflects how sequences were obtained (start methionine, tags, primers) rather than "
        "biology, trim or mask it."
        if result != "pass"
        else f"No single position differs much between classes (largest Cramér's V {v:.2f}, "
        f"at {where})."
    )
    return make_check(
        "position_composition",
        "position",
        "largest bias-corrected Cramér's V over positions",
        v,
        thresholds,
        result,
        explanation,
        end=str(worst["end"]),
        position=int(worst["position"]),
        positions_scanned=len(association),
    )
