"""The homology graph: every pair of sequences at or above the identity threshold.

An edge is a pair the split must never separate; its connected components are
the families that can go whole to one partition. The search is exhaustive up
to `exhaustive_max_sequences` (no pair can be missed), MMseqs2's most sensitive
prefilter above, and the report says which.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from deeprules import mmseqs
from deeprules.split.settings import SplitSettings

log = logging.getLogger("deeprules.split")


def similarity_graph(
    table: pd.DataFrame,
    settings: SplitSettings,
    threads: int,
    workdir: Path | None,
    between: str | None = None,
    purpose: str = "similarity graph",
    keep_measured: mmseqs.MeasuredPairs | None = None,
) -> tuple[pd.DataFrame, bool]:
    """Pairs (query, target, identity) at or above the threshold, and whether the
    search was exhaustive; with `between`, only pairs across that column's groups (the
    pre-training filter searches unlabeled against tune and test this way).
    `keep_measured`: filled with the measured common subsequences for the verification."""
    exhaustive = len(table) <= settings.exhaustive_max_sequences
    log.info(
        "%s: %d sequences, %s search",
        purpose,
        len(table),
        "exhaustive" if exhaustive else "prefilter",
    )
    pairs = mmseqs.similar_pairs(
        table,
        *settings.homology,
        workdir=workdir,
        threads=threads,
        exhaustive=exhaustive,
        between=between,
        co_optimal=settings.co_optimal,
        keep_measured=keep_measured,
    )
    return pairs, exhaustive


def homology_components(ids: pd.Series, pairs: pd.DataFrame) -> pd.Series:
    """Connected component of each sequence in the graph of pairs at or above the threshold.

    Numbered from 0 by decreasing size (ties by first id), so ids are stable.
    """
    graph = adjacency(ids, pairs)
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    first = np.full(len(sizes), len(ids))
    np.minimum.at(first, labels, np.arange(len(ids)))
    rank = np.empty(len(sizes), dtype=np.int64)
    rank[np.lexsort((first, -sizes))] = np.arange(len(sizes))
    return pd.Series(rank[labels], index=ids.index, name="component")


def adjacency(ids: pd.Series, pairs: pd.DataFrame) -> csr_matrix:
    """Symmetric 0/1 matrix over the rows of `ids`; pairs naming unknown ids are ignored."""
    position = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
    a = position.reindex(pairs["query"]).to_numpy()
    b = position.reindex(pairs["target"]).to_numpy()
    ok = ~(np.isnan(a) | np.isnan(b)) if len(pairs) else np.zeros(0, dtype=bool)
    a, b = a[ok].astype(np.int64), b[ok].astype(np.int64)
    data = np.ones(2 * len(a), dtype=np.int8)
    n = len(ids)
    return csr_matrix((data, (np.r_[a, b], np.r_[b, a])), shape=(n, n))
