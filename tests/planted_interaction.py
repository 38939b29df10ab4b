"""A planted DNA task that only an interaction of two motifs solves (tests and bench/cnn_bench.py).

Every sequence is random background with one copy of each of two bacterial
promoter boxes, the -35 box TTGACA and then the -10 box TATAAT. The label is
the spacing between them, as in sigma-70 promoters: a "promoter" has 15-19
random bases between the boxes, a "decoy" 5-9 or 25-29. Both classes contain
the same motifs, the same number of times, in the same order, at random
places, so k-mer counts carry no label: a k-mer that touches both boxes
would need k >= 7 (the smallest spacer is 5 bases), and the tuned k-mer
baselines (k = 1-6 for DNA) stay near chance. A convolutional network must
see both boxes at once and measure the distance between them: its receptive
field must span a box, the spacer and the other box (6 + 19 + 6 = 31 bases
for the longest promoter spacer), more than most networks in the default
(small) search space see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BOX_35, BOX_10 = "TTGACA", "TATAAT"
SPACERS = {"promoter": [(15, 19)], "decoy": [(5, 9), (25, 29)]}  # bases between the boxes


def planted_interaction_table(n: int, seed: int, length: int = 200) -> pd.DataFrame:
    """`n` sequences (half promoters, half decoys): columns id, sequence, label, source."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(n):
        label = "promoter" if index % 2 else "decoy"
        spacers = [s for low, high in SPACERS[label] for s in range(low, high + 1)]
        spacer = int(rng.choice(spacers))
        span = len(BOX_35) + spacer + len(BOX_10)
        bases = list(rng.choice(list("ACGT"), length))
        start = int(rng.integers(0, length - span + 1))
        bases[start : start + len(BOX_35)] = BOX_35
        bases[start + span - len(BOX_10) : start + span] = BOX_10
        rows.append(
            {
                "id": f"p{seed}_{index}",
                "sequence": "".join(bases),
                "label": label,
                "source": "planted",
            }
        )
    return pd.DataFrame(rows)


def kmer_counts(sequences: list[str], k: int) -> np.ndarray:
    """Counts of every DNA k-mer (4^k columns), for a quick check that k-mers carry no label."""
    index = {base: i for i, base in enumerate("ACGT")}
    counts = np.zeros((len(sequences), 4**k), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        codes = np.array([index[base] for base in sequence])
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        np.add.at(counts[row], windows @ (4 ** np.arange(k - 1, -1, -1)), 1)
    return counts
