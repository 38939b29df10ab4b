"""The one generator of planted test data: random sequences where the answer is known.

Every class but those mapped to None carries its motif at a random position, so a
model that works must find it; `hidden_every` puts every n-th sequence of a motif
class in a 'hard' batch without its motif (a failure domain no model can beat).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def planted_table(
    n: int,
    seed: int,
    motifs: Mapping[str, str | None],
    length: int | tuple[int, int] = 60,
    prefix: str = "s",
    hidden_every: int = 0,
    alphabet: str = "ACGT",
) -> pd.DataFrame:
    """`n` records cycling through the classes of `motifs` (in their order).

    Columns: id, sequence, label, source, component (each its own homology group, as an
    identity split of random sequences leaves it), motif_start (-1 without a motif) and,
    with `hidden_every`, batch ('hard' or 'easy').
    """
    rng = np.random.default_rng(seed)
    labels = list(motifs)
    low, high = (length, length) if isinstance(length, int) else length
    rows = []
    for index in range(n):
        label = labels[index % len(labels)]
        letters = rng.choice(list(alphabet), int(rng.integers(low, high + 1)))
        hard = bool(hidden_every) and index % hidden_every == 0
        motif = None if hard else motifs[label]
        start = int(rng.integers(0, len(letters) - len(motif))) if motif else -1
        if motif:
            letters[start : start + len(motif)] = list(motif)
        row = {"id": f"{prefix}{index}", "sequence": "".join(letters), "label": label}
        row |= {"source": "synthetic", "component": f"{prefix}{index}", "motif_start": start}
        if hidden_every:
            row["batch"] = "hard" if hard else "easy"
        rows.append(row)
    return pd.DataFrame(rows)


def as_fasta(table: pd.DataFrame) -> str:
    """FASTA records `>id synthetic` of a planted table."""
    return "".join(
        f">{i} synthetic\n{s}\n" for i, s in zip(table["id"], table["sequence"], strict=True)
    )


def few_label_task(
    labelled: int,
    unlabeled: int,
    seed: int,
    motif: str = "TGACTCAGCA",
    length: int | tuple[int, int] = 60,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A transfer-learning task (Tip 5): `labelled` sequences whose label is whether the
    motif occurs ('bound' / 'background'), and `unlabeled` more from the same generator,
    labels withheld (half carry the motif), as a pre-training source would give them.
    Returns (labelled table as `planted_table`, unlabeled table of id, sequence, source)."""
    classes = {"bound": motif, "background": None}
    table = planted_table(labelled, seed, classes, length, prefix="lab")
    pool = planted_table(unlabeled, seed + 1, classes, length, prefix="unl")
    return table, pool[["id", "sequence"]].assign(source="unlabeled_pool")


def related_source(
    target: pd.DataFrame,
    labelled: int,
    seed: int,
    copied: Sequence[str] = (),
    prefix: str = "rel",
    motif: str = "TGACTCAGCA",
    length: int | tuple[int, int] = 60,
) -> pd.DataFrame:
    """A second labelled dataset of the same task, for supervised pre-training
    (pretrain.from): `labelled` new sequences from `few_label_task`'s generator, then
    verbatim copies of the target's `copied` ids (ids 'copy_<id>', labels kept), as a
    public dataset holds some of another's sequences. Columns as `planted_table`'s."""
    classes = {"bound": motif, "background": None}
    own = planted_table(labelled, seed, classes, length, prefix=prefix)
    copies = target[target["id"].isin(set(copied))].assign(
        id=lambda table: "copy_" + table["id"], component=lambda table: table["id"]
    )
    return pd.concat([own, copies[own.columns]], ignore_index=True)
