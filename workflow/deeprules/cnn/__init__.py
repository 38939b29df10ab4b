"""CNN stage: a Conv1D network on one-hot sequences, tuned with Keras Tuner (Tips 3, 5, 6).

What happens, in order:

1. Train and tune partitions are read (never test), encoded as tokens
   (`data`, `deeprules.encoding`) and fed through tf.data with prefetching;
   above `cnn.in_memory_max_mb` the tokens are written once to memory-mapped
   files in the tuner directory and streamed batch by batch, in the same
   order (`streaming`). The classes and their order come from the split
   (split_report.json).
2. The smallest network of the space must fit 64 training sequences
   (`learning_check`, Tip 3); if it cannot, the pipeline is broken and the
   stage stops before tuning.
3. Keras Tuner searches in rounds (`growth`): round 1 in the configured, small
   space (`model`; Hyperband by default), later rounds in a space widened
   where the best trial says it is too small (at the edge of a range, a
   receptive field small against the sequences, still learning at its last
   epoch). Every trial trains on train, is scored by AUC on the tune
   partition and is never stopped before `cnn.min_epochs` (`training`).
   Exactly `budget.trials` trials run over all rounds (`tuning`).
4. The best trial (highest tune AUC; ties go to the earlier trial) is refitted
   from scratch on train with the same seed, for up to its round's
   `max_epochs`, early-stopped on tune, best epoch restored. Refitting gives a
   Hyperband winner, which may have seen only a few epochs, its full training.
5. The refitted model, its hyperparameters, train/tune predictions, every
   trial (with its round and receptive field), a training-curve figure and a
   summary (with the rounds and the device) are written (`outputs`).

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
