"""What one kNN trial's predictions cost per metric, on the default DNA k-mer table.

A trial fits on the trials' subsample (`budget.trial_subsample.sequences`, 2,000) and
scores tune; on 20,000 sequences tune holds 3,000. This encodes planted 500-bp
sequences with the default k-mer sizes (1-6, standardised without centring, as the
kNN family does), then times predict_proba of scikit-learn's KNeighborsClassifier on
the sparse table against deeprules' `Neighbours` (Manhattan on dense rows), and
checks that both give the same probabilities.

    .venv/bin/python bench/knn_metrics.py --reference 2000 --queries 3000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from planted import planted_table  # noqa: E402

from deeprules.baselines.scaling import Neighbours  # noqa: E402
from deeprules.features import SequenceFeatures  # noqa: E402


def tables(reference: int, queries: int, length: int) -> tuple[sp.csr_matrix, ...]:
    """The reference (fitted) and query rows, standardised on the reference; its labels."""
    table = planted_table(reference + queries, 0, {"background": None, "bound": "TATAAT"}, length)
    encoder = SequenceFeatures((1, 2, 3, 4, 5, 6)).fit(table["sequence"][:reference].tolist())
    encoded = sp.csr_matrix(encoder.transform(table["sequence"].tolist()))
    scaled = StandardScaler(with_mean=False).fit(encoded[:reference]).transform(encoded)
    labels = table["label"][:reference].to_numpy()
    return scaled[:reference].tocsr(), scaled[reference:].tocsr(), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=3000)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    train, queries, labels = tables(args.reference, args.queries, args.length)
    print(
        f"{train.shape[0]:,} reference x {queries.shape[0]:,} queries, {train.shape[1]:,} "
        f"columns, {train.nnz / train.shape[0]:,.0f} non-zeros per row"
    )
    print(f"{'metric':<10} {'sparse s':>9} {'Neighbours s':>13} {'same':>5}")
    for metric in ("manhattan", "euclidean", "cosine"):
        seconds, probabilities = [], []
        for kind in (KNeighborsClassifier, Neighbours):
            model = kind(n_neighbors=15, metric=metric, n_jobs=args.threads).fit(train, labels)
            started = time.perf_counter()
            probabilities.append(model.predict_proba(queries))
            seconds.append(time.perf_counter() - started)
        same = np.array_equal(*probabilities)
        print(f"{metric:<10} {seconds[0]:>9.1f} {seconds[1]:>13.1f} {same!s:>5}")


if __name__ == "__main__":
    main()
