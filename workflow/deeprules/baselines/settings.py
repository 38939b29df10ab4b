"""What a baselines run asks for, read from the rule's settings and checked up front.

The settings are `deeprules.config.baselines_settings`: the dataset's name and
sequence type, the config's `baselines` section, the shared trial budget and the
seed. A search space or descriptor scale that cannot work is refused before any
model is fitted, naming its config key, so a typo costs seconds, not a
half-finished tuning run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from modlamp.core import load_scale

from deeprules.baselines.families import FitContext, build_pipeline, family
from deeprules.baselines.scaling import Affordable, LargeData, affordable_forms
from deeprules.contracts import ALPHABETS
from deeprules.features import SequenceFeatures
from deeprules.io import InputError


@dataclass(frozen=True)
class BaselineSettings:
    """The run-config values the tuning, the controls and the outputs need."""

    sequence_type: str
    families: tuple[str, ...]
    search_spaces: dict[str, dict[str, Any]]
    features: dict[str, Any]  # kmer_sizes and descriptors of the baselines section
    trials: int  # per family: the budget the CNN tuner gets too (Tip 2)
    sampler: str
    primary_metric: str  # ranks trials and models on the tune partition
    fitting: FitContext
    shuffled_auroc_tolerance: float
    shuffled_repeats: int
    large_data: LargeData  # above its size, the quadratic families take affordable forms
    trial_subsample: dict[str, int]  # budget.trial_subsample: the rows every trial fits on

    @property
    def seed(self) -> int:
        return self.fitting.seed


def baseline_settings(settings: dict[str, Any], threads: int) -> BaselineSettings:
    """The job's settings as one object; 'auto' primary metric is AUROC, the metric the
    CNN's search and evaluate's best-baseline pick use."""
    section = settings["baselines"]
    primary = section["primary_metric"]
    return BaselineSettings(
        sequence_type=settings["dataset"]["sequence_type"],
        families=tuple(section["families"]),
        search_spaces=section["search_spaces"],
        features={key: section[key] for key in ("kmer_sizes", "descriptors", "kmer_max_columns")},
        trials=settings["trials"],
        sampler=section["sampler"],
        primary_metric="auroc" if primary == "auto" else primary,
        fitting=FitContext(
            seed=settings["seed"],
            class_weight=None if section["class_weight"] == "none" else section["class_weight"],
            threads=max(1, threads),
        ),
        shuffled_auroc_tolerance=section["shuffled_auroc_tolerance"],
        shuffled_repeats=section["shuffled_repeats"],
        large_data=LargeData(**section["large_data"]),
        trial_subsample=settings["trial_subsample"],
    )


def for_training_set(
    settings: BaselineSettings, train_sequences: int, table_nonzeros: int
) -> BaselineSettings:
    """The settings with the families' forms decided for this training set (its size and
    its encoded table's non-zero entries): once per stage, so the trials, the refits, the
    controls and the random-split check all fit the same form."""
    forms = affordable_forms(settings.large_data, train_sequences, table_nonzeros)
    return replace(settings, fitting=replace(settings.fitting, forms=forms))


def feature_maker(settings: BaselineSettings) -> SequenceFeatures:
    """k-mer frequencies for every sequence type; modlAMP descriptors for proteins only."""
    descriptors = settings.features["descriptors"]
    return SequenceFeatures(
        kmer_sizes=tuple(settings.features["kmer_sizes"][settings.sequence_type]),
        descriptors=settings.sequence_type == "protein" and descriptors["enabled"],
        global_descriptors=descriptors["global"],
        scales=tuple(descriptors["scales"]),
        max_kmer_columns=settings.features["kmer_max_columns"],
        sparse_above_sequences=settings.large_data.above_sequences,
        alphabet_size=len(ALPHABETS[settings.sequence_type]),
    )


def check_settings(settings: BaselineSettings) -> None:
    """Refuse a descriptor scale or search-space value that cannot work, naming the key."""
    for index, scale in enumerate(settings.features["descriptors"]["scales"]):
        _check_scale(f"baselines.descriptors.scales[{index}]", scale)
    for name in settings.families:
        space = settings.search_spaces[name]
        for parameter, spec in space.items():
            key = f"{family(name).search_space_key}.{parameter}"
            _check_range(key, spec)
            for value in candidates(spec):
                _probe(name, parameter, value, space, key)


def _check_scale(key: str, scale: str) -> None:
    try:
        values = load_scale(scale)[1]
    except KeyError:
        raise InputError(
            f"config key '{key}': '{scale}' is not a modlAMP amino-acid scale "
            "(e.g. eisenberg, kytedoolittle, hopp-woods, gravy)"
        ) from None
    if len(values["A"]) != 1:
        raise InputError(
            f"config key '{key}': scale '{scale}' has {len(values['A'])} values per residue; "
            "choose a one-dimensional scale such as eisenberg"
        )


def _check_range(key: str, spec: dict[str, Any]) -> None:
    if spec["type"] == "categorical":
        return
    if spec["low"] > spec["high"]:
        raise InputError(f"config key '{key}': low ({spec['low']}) is above high ({spec['high']})")
    if spec.get("log") and spec["low"] <= 0:
        raise InputError(f"config key '{key}': a log-scaled range needs low > 0, got {spec['low']}")
    if spec.get("log") and spec.get("step") not in (None, 1):
        raise InputError(f"config key '{key}': 'step' cannot be combined with 'log: true'")


def candidates(spec: dict[str, Any]) -> list[Any]:
    """The values worth probing: every choice, or both ends of a range."""
    if spec["type"] == "categorical":
        return list(spec["choices"])
    return [spec["low"], spec["high"]]


# Probing builds estimators only: these values never reach a fit. Both forms of every
# family are probed, the exact one and the one a large training set gets.
PROBE_CONTEXT = FitContext(seed=0, class_weight=None, threads=1)
PROBE_LARGE = replace(PROBE_CONTEXT, forms=Affordable(100, kernel_components=10, knn_reference=10))


def _probe(name: str, parameter: str, value: Any, space: dict[str, Any], key: str) -> None:
    """Build the family with `value` set and let sklearn's own parameter checks judge it."""
    params = {p: candidates(s)[0] for p, s in space.items()}
    condition = family(name).conditions.get(parameter)
    if condition:
        parent, allowed = condition
        if not set(allowed) & set(candidates(space[parent])):
            return  # never suggested: its parent never takes the value that enables it
        params[parent] = allowed[0]
    params[parameter] = value
    try:
        for context in (PROBE_CONTEXT, PROBE_LARGE):
            _validate(build_pipeline(name, params, context))
    except (ValueError, TypeError) as error:
        raise InputError(f"config key '{key}': value {value!r} is not accepted: {error}") from None


def _validate(model: Any) -> None:
    """sklearn's constraint check that fit() runs first, without the fitting cost, on every
    step (and the steps of a nested pipeline, such as the kernel-mapped SVM)."""
    for _, step in getattr(model, "steps", []):
        getattr(step, "_validate_params", lambda: None)()
        _validate(step)
