"""Check 1: is the label (almost) determined by a metadata column, e.g. the source database?"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy.stats import chi2_contingency

from deeprules.explore.verdicts import make_check, verdict


def cramers_v(contingency: pd.DataFrame) -> tuple[float, float]:
    """Chi-square p-value and bias-corrected Cramér's V (Bergsma 2013) of a contingency table.

    The correction keeps V near 0 for many-level columns (e.g. one batch per
    handful of sequences) that the raw V would call associated by chance.
    """
    observed = contingency.to_numpy(dtype=float)
    observed = observed[observed.sum(axis=1) > 0][:, observed.sum(axis=0) > 0]
    rows, cols = observed.shape
    if rows < 2 or cols < 2:
        return 1.0, 0.0
    chi2, p_value, _, _ = chi2_contingency(observed, correction=False)
    n = observed.sum()
    phi2 = max(0.0, chi2 / n - (rows - 1) * (cols - 1) / (n - 1))
    rows_c = rows - (rows - 1) ** 2 / (n - 1)
    cols_c = cols - (cols - 1) ** 2 / (n - 1)
    denominator = min(rows_c - 1, cols_c - 1)
    return float(p_value), float(math.sqrt(phi2 / denominator)) if denominator > 0 else 0.0


def label_metadata_checks(
    table: pd.DataFrame, metadata: list[str], settings: dict[str, Any]
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Check 1: is the label (almost) determined by a metadata column, e.g. the source database?"""
    checks, long_tables = [], []
    thresholds = {"warn": settings["cramers_v_warn"], "fail": settings["cramers_v_fail"]}
    for column in metadata:
        levels = table[column].replace("", "(missing)")
        contingency = pd.crosstab(table["label"], levels)
        long = contingency.stack().rename("count").reset_index()
        long.columns = ["label", "level", "count"]
        long_tables.append(long.assign(column=column)[["column", "label", "level", "count"]])
        if contingency.shape[1] < 2:
            checks.append(
                make_check(
                    f"label_x_{column}",
                    "label_x_metadata",
                    "bias-corrected Cramér's V",
                    0.0,
                    thresholds,
                    "pass",
                    f"'{column}' has one value for every sequence, so it cannot explain the label.",
                    column=column,
                    chi_square_p=1.0,
                    levels=1,
                )
            )
            continue
        p_value, v = cramers_v(contingency)
        result = verdict(v, **thresholds)
        strength = {"fail": "almost determined by", "warn": "strongly associated with"}
        explanation = (
            f"The label is {strength[result]} '{column}' (Cramér's V {v:.2f}): a model can "
            f"learn '{column}' instead of biology; compare within one value of '{column}' "
            "or add data that breaks the link."
            if result != "pass"
            else f"The label is at most weakly associated with '{column}' (Cramér's V {v:.2f})."
        )
        checks.append(
            make_check(
                f"label_x_{column}",
                "label_x_metadata",
                "bias-corrected Cramér's V",
                v,
                thresholds,
                result,
                explanation,
                column=column,
                chi_square_p=p_value,
                levels=int(contingency.shape[1]),
            )
        )
    columns = ["column", "label", "level", "count"]
    return checks, pd.concat(long_tables) if long_tables else pd.DataFrame(columns=columns)
