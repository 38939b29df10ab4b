"""What drives the predictions (Tip 8), read off the tune partition, never test.

- `baselines`: the features each tuned baseline leans on (coefficients, or
  permutation importance on tune);
- `attributions`: per-position attributions of the CNN for a sample of tune
  sequences, by in-silico mutagenesis and integrated gradients, two methods that
  fail differently, so agreement between them is evidence;
- `filters`: first-layer filters as position frequency matrices built from the
  subsequences that activate them most (the DeepBind / Basset recipe), drawn as
  sequence logos (`logos`). Comparison with JASPAR motifs is not done: it needs
  pyjaspar, an optional package; the summary says so;
- `network`: the saved CNN as these methods use it; `stage`: the rule.
"""

from deeprules.interpret.stage import run

__all__ = ["run"]
