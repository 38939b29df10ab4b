"""Evaluate: open the test partition once and score every final model on it (Tips 7 and 9).

Tip 7: the test set is used once, after every choice has been made on train and
tune; a panel of metrics that does not assume a balanced test set replaces a
single AUROC, and every number carries a bootstrap confidence interval. Tip 9:
before anyone interprets the winner, we look at where it fails (metadata
groups, sequence length, distance to the training set) and at how much better
it really is than the baselines and the controls.

One module per job:
- panel: the metric panel on weighted samples (point estimate and bootstrap alike)
- bootstrap: stratified resamples and percentile intervals
- thresholds: decisions made on tune (decision thresholds, the best baseline)
- access: the test-access ledger (one look at test), keyed by the test partition's content
- fingerprint: what identifies a model there (what decides its predictions)
- models: the other stages' final models and their train/tune predictions
- comparisons: paired comparisons of the CNN with the best baseline and the controls
- overfitting: the train / tune / test gap
- failure_domains: the panel per metadata group, length and identity-to-train bin
- figures: ROC, precision-recall, calibration, confusion and failure figures
- outputs: metrics.json and the tables
- stage: `run(job)`, the order in which all of this happens
"""

from deeprules.evaluate.access import TestReuseRefused
from deeprules.evaluate.fingerprint import model_fingerprint
from deeprules.evaluate.models import baseline_role
from deeprules.evaluate.stage import run

__all__ = ["TestReuseRefused", "baseline_role", "model_fingerprint", "run"]
