"""The one generator of planted test data: random sequences where the answer is known.

Every class but those mapped to None carries its motif at a random position, so a
model that works must find it; `hidden_every` puts every n-th sequence of a motif
class in a 'hard' batch without its motif (a failure domain no model can beat).
With `conservation` below 1 the motif is degenerate, as real binding sites are: each
planted copy keeps each letter of the consensus with that probability and otherwise
shows another letter, so no exact string marks the class.
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
    conservation: float = 1.0,
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
            letters[start : start + len(motif)] = binding_site(motif, conservation, alphabet, rng)
        row = {"id": f"{prefix}{index}", "sequence": "".join(letters), "label": label}
        row |= {"source": "synthetic", "component": f"{prefix}{index}", "motif_start": start}
        if hidden_every:
            row["batch"] = "hard" if hard else "easy"
        rows.append(row)
    return pd.DataFrame(rows)


def binding_site(
    motif: str, conservation: float, alphabet: str, rng: np.random.Generator
) -> list[str]:
    """One planted copy of `motif`: each letter kept with probability `conservation`,
    else replaced by one of the other letters (uniformly). At 1 it is the motif itself,
    and no random number is drawn, so exact-motif tables stay as they were."""
    if conservation >= 1:
        return list(motif)
    letters = list(motif)
    for position in np.flatnonzero(rng.random(len(motif)) >= conservation):
        letters[position] = str(rng.choice([a for a in alphabet if a != motif[position]]))
    return letters


def consensus_matches(sequence: str, motif: str) -> int:
    """Letters matching the motif in the sequence's best window: the ideal detector of a
    degenerate site (every consensus letter equally kept), the ceiling a model can reach."""
    letters = np.frombuffer(sequence.encode(), dtype=np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(letters, len(motif))
    return int((windows == np.frombuffer(motif.encode(), dtype=np.uint8)).sum(axis=1).max())


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
    conservation: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A transfer-learning task (Tip 5): `labelled` sequences whose label is whether the
    motif occurs ('bound' / 'background'), and `unlabeled` more from the same generator,
    labels withheld (half carry the motif), as a pre-training source would give them.
    Returns (labelled table as `planted_table`, unlabeled table of id, sequence, source).
    See DEGENERATE_SITE for the variant where few labels are too few."""
    classes = {"bound": motif, "background": None}
    table = planted_table(labelled, seed, classes, length, prefix="lab", conservation=conservation)
    pool = planted_table(
        unlabeled, seed + 1, classes, length, prefix="unl", conservation=conservation
    )
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


# The few-label task where pre-training has something to win (bench/pretrain_bench.py):
# a 20 bp site whose copies keep each letter with probability 0.75 (5 of 20 letters
# substituted on average) in 300-400 bp. An exact motif of 7-10 bp is found from scratch
# by 105 positive examples; this one is not a string: the best 9 bp window of a copy
# matches the consensus at about 7 letters, as some window of about half of all random
# 350 bp sequences does, so a filter must add up evidence over the whole 20 bp, which a
# few hundred labels barely show. The best possible detector (count of letters matching
# the consensus, best window) still separates the classes at AUROC about 0.97. The
# unlabeled pool shows the site about 5,000 times in 10,000 sequences, and to guess a
# hidden letter of a copy the masked-residue trunk can use the 19 letters around it
# (75% consensus), while a random background letter is unpredictable: the site is the
# only thing there is to learn.
DEGENERATE_SITE = {"motif": "GTAACGTCAACCTCGGAGAA", "conservation": 0.75, "length": (300, 400)}
