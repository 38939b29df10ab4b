"""Train / tune / test split with a verified no-leakage guarantee (Tip 7).

When test sequences are homologous to training sequences, a model can score
well by recognising relatives rather than by learning the biology, and the
test set no longer measures what it claims. The `homology` method therefore
promises: no pair of sequences in different partitions has identity AT OR
ABOVE the threshold. It builds the graph of all such pairs (an MMseqs2 search
that cannot miss one, deeprules.mmseqs; split.graph), places whole connected
components where it can, and where a component is too large to place it cuts
it, removing as few sequences as it can (split.homology, split.cut,
split.partition; each removal goes to the ledger). An independent search
afterwards counts cross-partition pairs (split.verify); any at or above the
threshold stops the stage. The methods `random`, `cluster` (MMseqs2 cluster,
then split by cluster) and `predefined` (a partition column shipped with the
data) exist for comparison and for reproducing published splits
(split.comparison); their reports count leakage the same way, and they never
stop the stage for it. The split also decides the classes once, from train
(split_report.json, split.report).

Independence is half of Tip 7; the other half is a test set that is a fair
sample. The homology method therefore also balances covariates (every
partition's share of every label x length-bin stratum, and of metadata columns
the dataset names, near the whole's: split.strata, split.refine,
split.tolerance), and every method's report measures the shift that remains
(split.shift: can a classifier tell two partitions apart by length or
composition?); beyond the gate the homology split stops.
"""

from deeprules.split.settings import SplitSettings, build_settings
from deeprules.split.shift import ShiftError
from deeprules.split.stage import run, split_dataset
from deeprules.split.verify import LeakageError

__all__ = [
    "LeakageError",
    "ShiftError",
    "SplitSettings",
    "build_settings",
    "run",
    "split_dataset",
]
