"""CNN stage: a Conv1D network on one-hot sequences, tuned with Keras Tuner (Tips 3, 5, 6).

What happens, in order:

1. Train and tune partitions are read (never test), encoded as tokens
   (`data`, `deeprules.encoding`) and fed through tf.data with prefetching.
   The classes and their order come from the split (split_report.json).
2. Keras Tuner searches the configured space (`model`; Hyperband by default)
   on the train partition, scoring every trial by AUC on the tune partition,
   with early stopping. Exactly `budget.trials` trials run (`tuning`).
3. The best trial (highest tune AUC; ties go to the earlier trial) is refitted
   from scratch on train with the same seed, for up to `max_epochs` epochs,
   early-stopped on tune, best epoch restored. Refitting gives a Hyperband
   winner, which may have seen only a few epochs, its full training.
4. The refitted model, its hyperparameters, train/tune predictions, every
   trial, a training-curve figure and a summary (with the device) are
   written (`outputs`).

The tuner directory (results/<dataset>/cnn/tuner/, `job.tuner_directory`) is
deliberately not a Snakemake output: Snakemake deletes the outputs of a failed
job, and this folder is what lets a killed job resume without repeating
finished trials.

Processes: `run(job)` checks the inputs, writes the job spec and starts
`python -m deeprules.cnn stage JOB` with PYTHONHASHSEED fixed (`job`, `stage`;
it must be set before Python starts). With `cnn.workers: N > 0` that process
starts one chief (CPU only) and N workers (`distributed`).

Other stages score the saved model with `predict_proba(model_path, sequences,
summary)` or load it with `load_model(model_path)` (`predict`); importing this
package registers the network's custom layer.
"""

from deeprules.cnn.predict import load_model, predict_proba
from deeprules.cnn.stage import run

__all__ = ["load_model", "predict_proba", "run"]
