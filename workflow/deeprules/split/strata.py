"""The groups a split keeps in proportion: the label, and the label crossed with each covariate.

A homology split places whole families, and families are not random samples of
the data: on amp the one giant family is short peptides and the small families
are long ones, so a split that balances only the label hands training the short
peptides and the test set the long ones (length alone then tells train from test
with AUROC 0.885), and the test set no longer measures the question. Balancing a
covariate means every partition's share of every label x covariate stratum stays
close to the whole data set's: sequence length by default (quantile bins), and
any metadata column the dataset names (batch, species, source).

Each sequence belongs to one group per block: block 0 is its label, then one
block per covariate (label x length bin, label x column value). Within a block
the groups of a partition share out its sequences, so a block's shares sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deeprules.io import InputError


@dataclass(frozen=True)
class Strata:
    """Group membership of every sequence (sequences x groups, 0/1), block by block."""

    member: np.ndarray  # sequences x groups, int64 0/1
    names: tuple[str, ...]  # one per group, e.g. "AMP", "AMP | length 7-18"
    block: np.ndarray  # block index per group: 0 = label, 1.. = covariates
    blocks: tuple[str, ...]  # block names: "label", "length", "<column>"

    @property
    def n_blocks(self) -> int:
        return len(self.blocks)


def build_strata(table: pd.DataFrame, length_bins: int, columns: tuple[str, ...] = ()) -> Strata:
    """Label groups, then label x length bin (if length_bins > 1), then label x value of
    each metadata column. Empty groups are dropped (tied lengths can merge bins), and so
    is a covariate with one value per label, which would only repeat the label."""
    labels = table["label"].astype(str).to_numpy()
    blocks: list[tuple[str, np.ndarray]] = [("label", labels)]
    if length_bins > 1:
        lengths = table["sequence"].str.len().to_numpy()
        blocks.append(("length", length_bin_names(lengths, length_bins)))
    for column in columns:
        if column not in table.columns:
            raise InputError(
                f"key 'split.balance_columns': column '{column}' is not in sequences.tsv; "
                f"columns are {list(table.columns)}"
            )
        values = table[column].fillna("").astype(str)
        blocks.append((column, (f"{column}=" + values).to_numpy()))
    members, names, block_of, kept_blocks = [], [], [], []
    classes = len(np.unique(labels))
    for name, values in blocks:
        groups = (
            values
            if not kept_blocks
            else [f"{a} | {b}" for a, b in zip(labels, values, strict=True)]
        )
        group_names, code = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
        if kept_blocks and len(group_names) == classes:
            continue  # one value per label (e.g. every length equal): the label again
        block_of.extend([len(kept_blocks)] * len(group_names))
        kept_blocks.append(name)
        members.append(np.eye(len(group_names), dtype=np.int64)[code])
        names.extend(group_names.tolist())
    return Strata(
        member=np.hstack(members),
        names=tuple(names),
        block=np.array(block_of, dtype=np.int64),
        blocks=tuple(kept_blocks),
    )


def length_bin_names(lengths: np.ndarray, bins: int) -> np.ndarray:
    """Quantile bin of each length, named by the lengths it holds ("length 7-18"), so a
    reader of the report sees which part of the length distribution a stratum is.
    Bin edges are quantiles of the whole data set; ties can leave fewer bins."""
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, bins + 1)[1:-1]))
    code = np.searchsorted(edges, lengths, side="right")
    low = pd.Series(lengths).groupby(code).transform("min").to_numpy()
    high = pd.Series(lengths).groupby(code).transform("max").to_numpy()
    width = len(str(int(lengths.max()))) if len(lengths) else 1
    return np.array([f"length {a:0{width}d}-{b:0{width}d}" for a, b in zip(low, high, strict=True)])
