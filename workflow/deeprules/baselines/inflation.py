"""What a random split would have said about the best family (Tip 7).

The best family, with its tuned parameters, is refitted on a random (not
homology-aware) split of train + tune of the same sizes; the gap between its
tune score there and on the homology split is the optimism a random split
would have reported on this dataset.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from deeprules.baselines.fitting import Fitted, encode, final_model
from deeprules.baselines.scoring import METRICS
from deeprules.baselines.settings import BaselineSettings, feature_maker
from deeprules.contracts import Classes

log = logging.getLogger(__name__)


def random_split_check(
    best: Fitted,
    train: pd.DataFrame,
    tune: pd.DataFrame,
    classes: Classes,
    settings: BaselineSettings,
) -> dict[str, Any]:
    """The best family's tune scores on a random split beside those on the homology split."""
    pooled = pd.concat([train, tune], ignore_index=True)
    random_train, random_tune = train_test_split(
        pooled, test_size=len(tune), stratify=pooled["label"], random_state=settings.seed
    )
    features = feature_maker(settings)
    data = encode(features, random_train, random_tune)
    refit = final_model(best.family, best.params, features, data, classes, settings.fitting)
    inflation = {m: refit.tune[m] - best.tune[m] for m in METRICS}
    primary = settings.primary_metric
    log.info(
        "random split: %s %s %.4f vs %.4f across homology partitions (inflation %+.4f)",
        best.family,
        primary,
        refit.tune[primary],
        best.tune[primary],
        inflation[primary],
    )
    return {
        "family": best.family,
        "params": best.params,
        "primary_metric": primary,
        "homology_split": best.tune,
        "random_split": refit.tune,
        "inflation": inflation,
        "sizes": {"train": len(random_train), "tune": len(random_tune)},
    }
