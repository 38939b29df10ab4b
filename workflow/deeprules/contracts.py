"""The files stages hand to each other, defined once (docs/architecture.md lists them).

- Partitions (`split/{train,tune,test}.tsv`): id, sequence, label, then metadata.
- Classes: decided once, by the split, and recorded in `split_report.json`
  (`classes`, `positive_class`); every later stage reads them from there, so
  "positive" means the same class in every output.
- Predictions (`baselines/predictions.tsv`, `cnn/predictions.tsv`,
  `evaluate/predictions.tsv`): id, partition, model, role, label, predicted,
  one `score_<class>` per class (the model's probability of that class).
- Model roles: a tuned baseline family, a control, or the CNN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deeprules.io import InputError, read_json, read_tsv, write_tsv

# The canonical letters of each sequence type (one-hot columns, k-mer alphabets,
# composition); curation accepts IUPAC ambiguity codes on top (IUPAC_ALPHABETS).
ALPHABETS = {
    "dna": "ACGT",
    "rna": "ACGU",
    "protein": "ACDEFGHIKLMNPQRSTVWY",
}
IUPAC_ALPHABETS = {
    "dna": set("ACGTRYSWKMBDHVN"),
    "rna": set("ACGURYSWKMBDHVN"),
    "protein": set("ACDEFGHIKLMNPQRSTVWYBZXJUO"),
}


def sequence_problem(sequence: str, alphabet: set[str]) -> tuple[str, str] | None:
    """Why a sequence cannot be used, as (reason, detail) for a ledger, or None: the
    checks every record gets, labelled (curate) or unlabeled (deeprules.unlabeled)."""
    if not sequence:
        return "empty_sequence", "record has no sequence"
    bad = sorted(set(sequence) - alphabet)
    if bad:
        return "invalid_alphabet", f"characters not in the alphabet: {''.join(bad)}"
    return None


PARTITIONS = ("train", "tune", "test")
PARTITION_COLUMNS = ("id", "sequence", "label")

# Roles of the models a run compares (Tips 1, 2 and 7).
ROLE_BASELINE = "baseline"  # a tuned traditional family
ROLE_CONTROL = "control"  # majority class, shuffled labels, trivial-feature shortcut
ROLE_CNN = "cnn"
# With pre-training (Tip 5): the CNN search without the trunk, what pre-training is judged by
ROLE_SCRATCH = "cnn_scratch"
ROLES = (ROLE_BASELINE, ROLE_CONTROL, ROLE_CNN, ROLE_SCRATCH)
# Tuned families from the easiest to the hardest to read (coefficients first): Tip 8
# weighs the first of them that ran against the best model (evaluate, report).
INTERPRETABILITY = (
    "logistic_regression",
    "linear_svm",
    "naive_bayes",
    "knn",
    "random_forest",
    "hist_gradient_boosting",
    "rbf_svm",
)
PREDICTION_COLUMNS = ("id", "partition", "model", "role", "label", "predicted")


def read_partition(path: str | Path, partition: str) -> pd.DataFrame:
    """A partition table with the columns the split promises; a missing column or an
    empty partition names the file and how to rebuild it."""
    path = Path(path)
    table = read_tsv(path)
    missing = [column for column in PARTITION_COLUMNS if column not in table.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; columns are: "
            f"{', '.join(table.columns)}. Re-run the split stage to rebuild {path.name}."
        )
    if table.empty:
        raise InputError(f"{path}: the {partition} partition has no sequences")
    return table


@dataclass(frozen=True)
class Classes:
    """The class names in output order and the positive class (two classes only).

    Order: sorted, except that with two classes the positive class comes last, so a
    single sigmoid output or a `score` column is its probability.
    """

    names: tuple[str, ...]
    positive: str | None

    @property
    def binary(self) -> bool:
        return len(self.names) == 2

    @property
    def positive_index(self) -> int:
        return self.names.index(self.positive) if self.positive is not None else -1

    def to_json(self) -> dict[str, Any]:
        return {"classes": list(self.names), "positive_class": self.positive}


def decide_classes(train_labels: Sequence[str], configured: str | None, where: str) -> Classes:
    """The split's one decision on classes: the dataset's `positive_class`, else the
    minority class of train (ties: the later name); None with more than two classes."""
    counts = pd.Series(list(train_labels)).value_counts()
    names = sorted(str(c) for c in counts.index)
    if len(names) != 2:
        return Classes(tuple(names), None)
    if configured is None:
        positive = min(names, key=lambda c: (counts[c], -names.index(c)))
    elif configured in names:
        positive = configured
    else:
        raise InputError(
            f"dataset key 'positive_class': '{configured}' is not a label in {where} "
            f"(labels: {', '.join(names)})"
        )
    negative = next(c for c in names if c != positive)
    return Classes((negative, positive), positive)


def read_classes(split_report: str | Path) -> Classes:
    """The classes the split decided, from its split_report.json."""
    report = read_json(split_report)
    if "classes" not in report:
        raise InputError(
            f"{split_report}: no 'classes' recorded; re-run the split stage to rebuild it"
        )
    return Classes(tuple(str(c) for c in report["classes"]), report.get("positive_class"))


def prediction_frame(
    ids: Sequence[str],
    partition: str,
    model: str,
    role: str,
    labels: Sequence[str],
    probabilities: np.ndarray,
    classes: Classes,
) -> pd.DataFrame:
    """One model's predictions on one partition in the shared layout.

    `probabilities` has one column per class in `classes.names` order; `predicted`
    is the most probable class (decision thresholds are evaluate's business).
    """
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; one of {ROLES}")
    probabilities = np.asarray(probabilities, dtype=float)
    frame = pd.DataFrame(
        {
            "id": list(ids),
            "partition": partition,
            "model": model,
            "role": role,
            "label": list(labels),
            "predicted": [classes.names[i] for i in probabilities.argmax(axis=1)],
        }
    )
    for index, name in enumerate(classes.names):
        frame[f"score_{name}"] = probabilities[:, index]
    return frame


def write_predictions(path: str | Path, frames: Sequence[pd.DataFrame]) -> None:
    """Write prediction frames; a stage before evaluate must never score test."""
    table = pd.concat(frames, ignore_index=True)
    if "test" in set(table["partition"]) and Path(path).parent.name != "evaluate":
        raise ValueError(f"{path}: only evaluate may write test predictions")
    write_tsv(path, table)


def read_predictions(path: str | Path, classes: Classes) -> pd.DataFrame:
    """A predictions table with its columns checked and scores as numbers."""
    table = read_tsv(path)
    wanted = [*PREDICTION_COLUMNS, *(f"score_{name}" for name in classes.names)]
    missing = [column for column in wanted if column not in table.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; re-run the stage that wrote it"
        )
    unknown = sorted(set(table["role"]) - set(ROLES))
    if unknown:
        raise InputError(f"{path}: unknown model role(s) {unknown}; roles are {ROLES}")
    scores = [f"score_{name}" for name in classes.names]
    return table.astype(dict.fromkeys(scores, float))
