"""What the JSON schemas cannot say: YAML errors with their line, rules across keys,
and which of several merged config files set a key.

Called by deeprules.config when the workflow starts, so a mistake that the
configuration alone decides (fractions that do not sum to 1, an inverted range,
a warning threshold above its failure threshold, a header regex without a
`label` group) stops the run before any job, naming the file and the key,
instead of failing a stage minutes or hours later.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from deeprules.io import InputError

# A key as a path of mapping keys and list positions, e.g. ("split", "fractions").
KeyPath = tuple[str | int, ...]
Problem = tuple[KeyPath, str]
# A config layer Snakemake merged: where it came from and what it set (later layers win).
Layer = tuple[str, Any]

# explore's thresholds: (the one reached first, the one reached later) as a value worsens.
EXPLORE_PAIRS = (
    ("auroc_warn", "auroc_fail"),
    ("cramers_v_warn", "cramers_v_fail"),
    ("position_v_warn", "position_v_fail"),
    ("duplicate_fraction_warn", "duplicate_fraction_fail"),
    ("balance_fail", "balance_warn"),  # a smaller class ratio is worse
)
CNN_RANGES = ("dropout", "l2", "learning_rate")


def key_name(path: KeyPath) -> str:
    """('sources', 0, 'member') -> 'sources[0].member', as config/README.md writes keys."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content; a syntax error names the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a text file ({error.reason}, byte {error.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        raise InputError(_yaml_error(path, error)) from None
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML: {error}") from None


def _yaml_error(path: Path, error: yaml.MarkedYAMLError) -> str:
    """'file, line L, column C: not valid YAML: problem (what was open, and where)'."""
    mark, context = error.problem_mark or error.context_mark, ""
    if error.context:
        opened = error.context_mark
        start = (
            f" that starts on line {opened.line + 1}, column {opened.column + 1}"
            if opened and opened != mark
            else ""
        )
        context = f" ({error.context}{start})"
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
    return (
        f"{where}: not valid YAML: {error.problem}{context}. Check the indentation "
        "(spaces, not tabs), brackets and quotes there."
    )


def check_yaml_syntax(paths: Sequence[str | Path]) -> None:
    """Read every existing file of `paths`, so that a syntax error names file and line
    (Snakemake's own message names neither). For the Snakefile, before `configfile:`."""
    for path in paths:
        if Path(path).is_file():
            read_yaml(path)


def blame(path: KeyPath, layers: Sequence[Layer], default: str) -> str:
    """The layer that set `path` last (the value Snakemake kept), else `default`."""
    for name, data in reversed(layers):
        if _has_key(data, path):
            return name
    return default


def _has_key(data: Any, path: KeyPath) -> bool:
    for part in path:
        in_list = isinstance(part, int) and isinstance(data, list) and part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return False
        data = data[part]
    return True


def run_config_problems(config: dict[str, Any]) -> list[Problem]:
    """Rules across keys of a validated run config (defaults filled in)."""
    problems: list[Problem] = []
    fractions = config["split"]["fractions"]
    total = sum(fractions.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        shares = " + ".join(f"{name} {value:g}" for name, value in fractions.items())
        problems.append(
            (
                ("split", "fractions"),
                f"must sum to 1, got {shares} = {total:g}; e.g. train 0.7, tune 0.15, test 0.15",
            )
        )
    space = config["cnn"]["search_space"]
    for name in CNN_RANGES:
        low, high = space[name]
        if low > high:
            problems.append(
                (
                    ("cnn", "search_space", name),
                    f"is a range [low, high], got [{low:g}, {high:g}]; write [{high:g}, {low:g}]",
                )
            )
    explore = config["explore"]
    for first, later in EXPLORE_PAIRS:
        if explore[first] > explore[later]:
            problems.append(
                (
                    ("explore", first),
                    f"({explore[first]:g}) must not exceed explore.{later} "
                    f"({explore[later]:g}): a check must warn before it fails",
                )
            )
    subsample = config["budget"]["trial_subsample"]
    if subsample["sequences"] > subsample["above_sequences"]:
        problems.append(
            (
                ("budget", "trial_subsample", "sequences"),
                f"({subsample['sequences']:,}) must not exceed "
                f"budget.trial_subsample.above_sequences ({subsample['above_sequences']:,}): "
                "a trial above the threshold would fit on more sequences than one below it",
            )
        )
    problems += _evaluate_bins(config["evaluate"])
    problems += _search_space_ranges(config["baselines"]["search_spaces"])
    return problems


def _evaluate_bins(evaluate: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for name in ("identity_bins", "length_bins"):
        edges = evaluate[name]
        if isinstance(edges, list) and any(a >= b for a, b in itertools.pairwise(edges)):
            problems.append(
                (("evaluate", name), f"holds bin edges, which must increase: got {edges}")
            )
    return problems


def _search_space_ranges(spaces: dict[str, Any]) -> list[Problem]:
    """Ranges Optuna cannot draw from (the baselines stage also checks each choice
    against scikit-learn; the schema lists the allowed choices where they are few)."""
    problems: list[Problem] = []
    for family, space in spaces.items():
        for parameter, spec in space.items():
            key = ("baselines", "search_spaces", family, parameter)
            if spec["type"] == "categorical":
                continue
            if spec["low"] > spec["high"]:
                problems.append(
                    (key, f"has low ({spec['low']}) above high ({spec['high']}); swap them")
                )
            if spec.get("log") and spec["low"] <= 0:  # optional key, no default
                problems.append((key, f"is log-scaled and needs low > 0, got {spec['low']}"))
    return problems


def pretraining_problems(config: dict[str, Any], datasets: dict[str, Any]) -> list[Problem]:
    """pretrain.from across the run's datasets: the source must be one of them, every
    dataset it pre-trains must share its sequence type (the trunk's first convolution
    reads the source's one-hot alphabet), and none may also declare an unlabeled source
    (a trunk has one objective: rather refuse than silently ignore a declared source)."""
    source = config["pretrain"]["from"]
    if source is None:
        return []
    key = ("pretrain", "from")
    if source not in datasets:
        return [
            (
                key,
                f"names '{source}', which is not a dataset of this run (datasets: "
                f"{', '.join(datasets)}); name one of them, add '{source}' to datasets, or "
                "set pretrain.from to null",
            )
        ]
    problems: list[Problem] = []
    kind = datasets[source]["sequence_type"]
    for name, dataset in datasets.items():
        if name == source:
            continue
        if dataset["sequence_type"] != kind:
            problems.append(
                (
                    key,
                    f"names '{source}', a {kind} dataset, but '{name}' is "
                    f"{dataset['sequence_type']}: the trunk reads one one-hot alphabet, so "
                    "every dataset pre-trained from it needs the same sequence_type; run "
                    f"'{name}' in a run of its own, or set pretrain.from to null",
                )
            )
        if any(s["role"] == "unlabeled" for s in dataset["sources"]):
            problems.append(
                (
                    key,
                    f"names '{source}' (supervised pre-training), but dataset '{name}' also "
                    "declares a source with role 'unlabeled' (self-supervised pre-training) "
                    "and a trunk has one objective; remove the unlabeled sources from "
                    f"'{name}''s dataset file, run '{name}' in a run of its own, or set "
                    "pretrain.from to null",
                )
            )
    return problems


def dataset_problems(dataset: dict[str, Any]) -> list[Problem]:
    """Rules across keys of a validated dataset file."""
    problems: list[Problem] = []
    names = [source["name"] for source in dataset["sources"]]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append((("sources",), f"needs unique source names, repeated: {repeated}"))
    for index, source in enumerate(dataset["sources"]):
        labeled = source["role"] == "labeled"
        if labeled and dataset["labels"]["from"] == "source" and "label" not in source:
            problems.append(
                (("sources", index, "label"), "is required because labels.from is 'source'")
            )
        if source.get("header") is False and not source.get("columns"):
            problems.append((("sources", index, "columns"), "is required when header is false"))
        if "member" in source:
            problems += _member_problems(index, source["member"])
    if not any(source["role"] == "labeled" for source in dataset["sources"]):
        problems.append((("sources",), "needs at least one source with role 'labeled'"))
    if dataset["labels"]["from"] == "header":
        problems += _regex_problems(dataset["labels"]["regex"])
    return problems


def _member_problems(index: int, member: str) -> list[Problem]:
    """A member is a path inside the archive: never absolute, never through '..'."""
    parts = Path(member).parts
    if not member or Path(member).is_absolute() or ".." in parts or member.startswith("~"):
        return [
            (
                ("sources", index, "member"),
                f"('{member}') must be a path inside the archive, relative and without '..' "
                "(e.g. data/positives.fa)",
            )
        ]
    return []


def _regex_problems(regex: str) -> list[Problem]:
    key = ("labels", "regex")
    try:
        compiled = re.compile(regex)
    except re.error as error:
        return [
            (
                key,
                f"('{regex}') is not a valid regular expression: {error.msg} at position "
                f"{error.pos}. Check brackets and escape literal ones (\\(, \\[)",
            )
        ]
    if "label" not in compiled.groupindex:
        return [
            (
                key,
                f"('{regex}') has no named group 'label', so no label can be read; mark the "
                "label's part of the header with (?P<label>...), e.g. 'class=(?P<label>\\w+)'",
            )
        ]
    return []


def main(paths: list[str]) -> int:
    """`python -m deeprules.config_checks FILE...`: the YAML syntax check alone, for
    `make run` (Snakemake's own message for a broken config file names no file)."""
    try:
        check_yaml_syntax(paths)
    except InputError as error:
        print(f"deeprules: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
