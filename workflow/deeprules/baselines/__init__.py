"""Tuned traditional baselines and the controls that say what a score means.

Tips 1 and 2: a deep model is only worth its cost if it beats traditional
models tuned with the same care, so every family gets exactly `trials` Optuna
trials (the number the CNN tuner gets), scored on the tune partition. Tip 7:
three controls put the scores in context: a majority (prior) classifier, the
best baseline refitted on shuffled labels (should be at chance; if not,
something leaks), and a model on trivial features (length, composition, end
residues). Finally the best family is refitted on a random split of the same
sequences, to show how much a random split would have flattered it. This stage
reads train and tune only; the test partition is never opened here.

Modules: families (the registry of model families), settings (the run's
settings, checked up front), fitting, scoring, tuning (Optuna), parallel (families
tuned side by side in worker processes), controls,
inflation (the random-split check), outputs, stage (`run(job)`).
"""

from deeprules.baselines.controls import CONTROLS
from deeprules.baselines.families import FAMILIES, REGISTRY, Family
from deeprules.baselines.outputs import output_paths
from deeprules.baselines.stage import run

__all__ = ["CONTROLS", "FAMILIES", "REGISTRY", "Family", "output_paths", "run"]
