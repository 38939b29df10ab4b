"""Pretrain stage: self-supervised pre-training of a convolutional trunk (Tip 5).

"If there is not enough data available to train a well-performing model, consider
using transfer learning"; self-supervised pre-training "leverages large amounts of
unlabeled data". For a dataset whose file declares a source with `role: unlabeled`:

1. The pre-training set is the unlabeled sequences (curate/unlabeled.tsv) minus every
   homologue of a tune or test sequence, which the split listed
   (split/pretrain_excluded.tsv: this stage never reads test.tsv), plus the target's
   train partition (`data`).
2. Masked-residue prediction: a fraction of positions is hidden (replaced by the
   "any letter" row of the one-hot table) and a small Conv1D trunk, built exactly as
   the CNN's convolution blocks (`deeprules.cnn.model`: same layer names, padding
   mask), predicts the hidden letter from its neighbours (`trunk`, `training`). The
   tune partition's sequences, masked once, measure it each epoch.
3. Seeded, deterministic ops, a checkpoint after every epoch (a killed job resumes
   where it stopped; pretrain/checkpoint/ is not an output, as cnn/tuner/ is not).
4. Outputs: pretrain/trunk.keras (the CNN search loads its convolutions as the
   `pretrained` option: frozen or fine-tuned) and summary.json (sequences used and
   removed, masked accuracy per epoch, time, device).

With pretrain.from (supervised, `supervised`), step 1 takes the other dataset's train
partition with its labels instead (minus its homologues of this dataset's tune and
test, which this dataset's split listed), step 2 learns those labels through the
CNN's head shape (global max, softmax), measured on the other dataset's tune; steps 3
and 4 are the same.
"""

from deeprules.pretrain.stage import run

__all__ = ["run"]
