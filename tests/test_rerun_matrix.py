"""A changed setting reruns exactly the stages whose results it can change (docs/architecture.md).

For every key documented in config/README.md (run config, dataset file, a source),
the key is changed on the finished tiny run and `snakemake --dry-run` must schedule
exactly the rules this file expects. The expectation is written here by hand, from
what each stage reads and the order of the stages: a second statement of the
workflow's contract, independent of deeprules.config's settings builders. A key
documented without a row here fails the test, so a new key needs a row.
"""

from __future__ import annotations

import copy
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, SNAKEMAKE

from deeprules.config import load_dataset, validate_run_config

pytestmark = pytest.mark.slow

# What each rule's outputs feed (the workflow's DAG, stated independently).
FEEDS = {
    "fetch": ["curate"],
    "curate": ["explore", "split", "pretrain", "report"],
    "explore": ["explore_gate", "report"],
    "explore_gate": [],  # training waits for the gate but does not read its content
    "split": [
        *("split_costs", "baselines", "pretrain", "cnn", "cnn_scratch", "evaluate", "interpret"),
        "report",
    ],
    "split_costs": ["report"],  # the cost table: nothing but the report reads it
    "pretrain": ["cnn", "report"],
    "baselines": ["evaluate", "interpret", "report"],
    "cnn": ["evaluate", "interpret", "report"],
    "cnn_scratch": ["evaluate"],
    "evaluate": ["report"],
    "interpret": ["report"],
    "report": [],
}
# Rules only a dataset with pre-training has (Tip 5: an unlabeled source, or another
# dataset named by pretrain.from); the tiny dataset has none. Across datasets, a
# target's split also reads the pretrain.from dataset's train.tsv (own test below).
PRETRAINING_ONLY = {"pretrain", "cnn_scratch"}


def from_stages(*stages: str, pretraining: bool = False) -> set[str]:
    """The rules that rerun when `stages` rerun: themselves and everything downstream
    (the pre-training rules only for a dataset with pre-training)."""
    found, todo = set(), list(stages)
    while todo:
        stage = todo.pop()
        if stage not in found:
            found.add(stage)
            todo.extend(FEEDS[stage])
    return found if pretraining else found - PRETRAINING_ONLY


NOTHING: set[str] = set()
# Which stages read each key (first rerun); the rest follows from FEEDS.
RUN_CONFIG: dict[str, set[str]] = {
    "datasets": NOTHING,  # adding a dataset schedules only that dataset (own test)
    "datasets_dir": NOTHING,
    "seed": from_stages("explore", "split", "baselines", "cnn", "evaluate", "interpret"),
    "deterministic": from_stages("cnn"),
    "budget.trials": from_stages("baselines", "cnn"),
    **{
        f"budget.trial_subsample.{key}": from_stages("baselines", "cnn")
        for key in ("above_sequences", "sequences", "tune_sequences")
    },
    **{f"fetch.{key}": from_stages("fetch") for key in ("retries", "backoff_seconds")},
    "fetch.timeout_seconds": from_stages("fetch"),
    **{f"fetch.endpoints.{k}": from_stages("fetch") for k in ("zenodo", "uniprot", "ena", "ncbi")},
    "curate.on_invalid": from_stages("curate"),
    "curate.min_per_class": from_stages("curate"),
    "explore.strict": {"explore_gate"},
    # The tiny dataset is DNA: settings of the other sequence types change nothing.
    "split.threshold.protein": NOTHING,
    "explore.kmer_size_protein": NOTHING,
    "baselines.kmer_sizes.protein": NOTHING,
    "baselines.kmer_sizes.rna": NOTHING,
    "baselines.descriptors.enabled": NOTHING,  # descriptors are for proteins only
    "baselines.descriptors.global": NOTHING,
    "baselines.descriptors.scales": NOTHING,
    "split.threshold.nucleotide": from_stages("split"),
    "split.balance.compare": from_stages("split_costs"),
    "interpret.permutation_incremental_above": from_stages("interpret"),
    # large training sets: the baselines' affordable forms and k-mer hashing
    "baselines.kmer_max_columns": from_stages("baselines"),
    **{
        f"baselines.large_data.{key}": from_stages("baselines")
        for key in (
            "above_sequences",
            "kernel_components",
            "knn_reference_sequences",
            "kernel_map_above",
        )
    },
    # the tiny run alone: 'tiny' would name itself, the source, which is not pre-trained;
    # the two-dataset cases are an own test (test_pretrain_from_reruns_targets_not_the_source)
    "pretrain.from": NOTHING,
    # Read only for a dataset with an unlabeled source: the tiny run never reads them.
    **{
        f"pretrain.{key}": NOTHING
        for key in (
            "epochs",
            "mask_fraction",
            "conv_blocks",
            "filters",
            "kernel_size",
            "dilation",
            "learning_rate",
            "batch_size",
            "choices",
            "finetune_learning_rate_factor",
        )
    },
}
PREFIX_STAGE = {"cnn.": "cnn", "evaluate.": "evaluate", "interpret.": "interpret"}
PREFIX_STAGE |= {"explore.": "explore", "split.": "split", "baselines.": "baselines"}

DATASET_FILE: dict[str, set[str]] = {
    "description": {"report"},
    "ethics": {"report"},
    "sensitive": {"report"},
    "positive_class": from_stages("split", "report"),
    "sequence_type": from_stages("curate"),
    "allow_unpinned": from_stages("fetch"),
    "sources": from_stages("fetch"),
    "split.threshold": from_stages("split"),
    "split.denominator": from_stages("split"),
    "split.partition_column": from_stages("split"),
    "split.balance_columns": from_stages("split"),
    "split.method": from_stages("split"),
    "split.fractions": from_stages("split"),
}
DATASET_PREFIX_STAGE = {"labels.": "curate", "metadata.": "curate"}


def expected_for_run_key(key: str) -> set[str]:
    if key in RUN_CONFIG:
        return RUN_CONFIG[key]
    for prefix, stage in PREFIX_STAGE.items():
        if key.startswith(prefix):
            return from_stages(stage)
    raise KeyError(f"config/README.md documents '{key}' but the rerun matrix has no row")


def expected_for_dataset_key(key: str) -> set[str]:
    if key in DATASET_FILE:
        return DATASET_FILE[key]
    for prefix, stage in DATASET_PREFIX_STAGE.items():
        if key.startswith(prefix):
            return from_stages(stage)
    raise KeyError(f"config/README.md documents dataset key '{key}' but has no matrix row")


# -- the documented keys -------------------------------------------------------

KEY_CELL = re.compile(r"^\| (`[^|]+`(?:\s*(?:/|,)\s*`[^|]+`)*) \|")


def documented_keys() -> dict[str, list[str]]:
    """Keys of config/README.md's tables, by file: run config, dataset file, source.

    A table belongs to the dataset file when it sits under the dataset heading or
    follows a "Per dataset" line, to a source under "A source"; the search-space
    family table (`family (scikit-learn)`) is one key, baselines.search_spaces.
    """
    keys: dict[str, list[str]] = {"run": [], "dataset": [], "source": []}
    kind, per_dataset, header = "run", False, ""
    for line in (REPO / "config/README.md").read_text().splitlines():
        if line.startswith("## "):
            kind = "dataset" if "datasets/" in line else "run"
        elif line.startswith("### A source"):
            kind = "source"
        elif line.startswith("Per dataset"):
            per_dataset = True
        elif line.startswith("| key") or line.startswith("| family"):
            header = line
        elif not line.startswith("|"):
            if line.strip() and not line.startswith("|"):
                per_dataset = per_dataset and not line.startswith("Outputs")
            header = "" if not line.strip() else header
        match = KEY_CELL.match(line)
        if not match or header.startswith("| family"):
            continue
        table = "dataset" if per_dataset and kind == "run" else kind
        keys[table].extend(_expand_cell(match.group(1)))
    return keys


def _expand_cell(cell: str) -> list[str]:
    """`a.b.x` / `.y` -> a.b.x, a.b.y; `record`, `file` -> record, file."""
    names = [n.strip().strip("`") for n in re.split(r"\s*[/,]\s*", cell)]
    first = names[0]
    return [first] + [
        first.rsplit(".", 1)[0] + name if name.startswith(".") else name for name in names[1:]
    ]


# -- changing one key ------------------------------------------------------------

# New values for keys whose change cannot be derived from the current value and type.
RUN_VALUES: dict[str, Any] = {
    "fetch.endpoints.zenodo": "https://mirror.example.org/zenodo",
    "fetch.endpoints.uniprot": "https://mirror.example.org/uniprot",
    "fetch.endpoints.ena": "https://mirror.example.org/ena",
    "fetch.endpoints.ncbi": "https://mirror.example.org/ncbi",
    "cnn.max_length": 40,
    "pretrain.choices": ["none", "finetune"],
    "cnn.worker_launcher": "env",
    "cnn.oracle_host": "127.0.0.2",
    "cnn.search_space.*": ("cnn.search_space.filters", [8, 16]),
    "evaluate.length_bins": [0, 30, 100],
    "evaluate.ledger_dir": ".deeprules/other_ledger",
    "evaluate.identity_bins": [0.0, 0.5, 1.0],
    "explore.auroc_warn": 0.65,
    "explore.cramers_v_warn": 0.6,
    "explore.position_v_warn": 0.35,
    "explore.duplicate_fraction_warn": 0.02,
    "explore.balance_fail": 0.03,
    "split.fractions.train": ("split.fractions", {"train": 0.6, "tune": 0.2, "test": 0.2}),
    "split.fractions.tune": ("split.fractions", {"train": 0.7, "tune": 0.2, "test": 0.1}),
    "split.fractions.test": ("split.fractions", {"train": 0.7, "tune": 0.1, "test": 0.2}),
    "split.shift.gated": ["length", "composition"],
    "baselines.kmer_sizes.protein": [1],
    "baselines.kmer_sizes.dna": [1, 2, 3],
    "baselines.kmer_sizes.rna": [1, 2],
    "baselines.descriptors.scales": ["eisenberg", "kytedoolittle"],
    "baselines.families": ["logistic_regression", "naive_bayes"],
    "baselines.search_spaces.<family>.<parameter>": (
        "baselines.search_spaces",
        {"linear_svm": {"C": {"type": "float", "low": 0.01, "high": 1.0, "log": True}}},
    ),
}


def schema_node(schema: dict[str, Any], key: str) -> dict[str, Any]:
    node = schema
    for part in key.split("."):
        node = node["properties"][part]
    return node


def changed_value(current: Any, node: dict[str, Any], key: str) -> Any:
    """A different valid value derived from the schema (type, enum, bounds)."""
    if "enum" in node:
        return next(value for value in node["enum"] if value != current)
    if isinstance(current, bool):
        return not current
    if isinstance(current, int):
        high = node.get("maximum", current + 1)
        return current + 1 if current + 1 <= high else current - 1
    if isinstance(current, float):
        high = node.get("maximum", node.get("exclusiveMaximum", current * 2 + 1))
        return round((current + high) / 2, 6) if high > current else current / 2
    raise AssertionError(f"no derived change for '{key}' ({current!r}); add it to RUN_VALUES")


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def get_key(data: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def run_config_change(base: dict[str, Any], key: str) -> dict[str, Any]:
    """The tiny run's config with `key` changed."""
    config = copy.deepcopy(base)
    if key in RUN_VALUES:
        value = RUN_VALUES[key]
        target, value = value if isinstance(value, tuple) else (key, value)
        set_key(config, target, value)
        return config
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    set_key(config, key, changed_value(get_key(config, key), schema_node(schema, key), key))
    return config


# -- dry runs ----------------------------------------------------------------------

DRY_RUN = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--dry-run", "--cores", "1"]
JOB = re.compile(r"^(?:local)?rule (\w+):\s*$")
WILDCARDS = re.compile(r"^\s+wildcards: dataset=(\S+)")


def scheduled(workdir: Path, config: dict[str, Any], name: str) -> set[tuple[str, str]]:
    """(rule, dataset) of every job `snakemake --dry-run` plans with `config`."""
    path = workdir / "matrix" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = subprocess.run(
        [*DRY_RUN, "--directory", str(workdir), "--configfile", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{name}: {result.stdout[-2000:]}{result.stderr[-3000:]}"
    jobs, rule = set(), None
    for line in (result.stdout + result.stderr).splitlines():
        if match := JOB.match(line):
            rule = match.group(1)
        elif (match := WILDCARDS.match(line)) and rule:
            jobs.add((rule, match.group(1)))
    return jobs


def rules_of(jobs: set[tuple[str, str]], dataset: str = "tiny") -> set[str]:
    return {rule for rule, name in jobs if name == dataset}


@pytest.fixture(scope="module")
def finished(tiny_run) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    workdir, _ = tiny_run
    config = validate_run_config(yaml.safe_load((workdir / "config/config.yaml").read_text()))
    dataset = yaml.safe_load((workdir / "config/datasets/tiny.yaml").read_text())
    assert scheduled(workdir, config, "unchanged") == set(), "the finished run is not up to date"
    return workdir, config, dataset


def test_every_documented_key_has_a_row():
    keys = documented_keys()
    assert len(keys["run"]) > 100 and len(keys["dataset"]) >= 15 and len(keys["source"]) >= 15
    for key in keys["run"]:
        expected_for_run_key(key)
    for key in keys["dataset"]:
        expected_for_dataset_key(key)


def test_every_schema_key_is_documented():
    """A key the schema accepts but the README does not describe has no row either."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    documented = set(documented_keys()["run"])
    for key in _leaf_keys(schema):
        covered = key in documented or any(
            key.startswith(d.split(".*")[0].split(".<")[0] + ".") for d in documented
        )
        assert covered, (
            f"workflow/schemas/config.schema.yaml key '{key}' is not in config/README.md"
        )


def _leaf_keys(node: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for name, child in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        if child.get("type") == "object" and child.get("properties"):
            found.extend(_leaf_keys(child, key + "."))
        else:
            found.append(key)
    return found


def test_run_config_keys_rerun_exactly_their_stages(finished):
    workdir, config, _ = finished
    keys = [k for k in dict.fromkeys(documented_keys()["run"]) if k not in OWN_TESTS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        changes = {key: run_config_change(config, key) for key in keys}
        found = dict(
            zip(keys, pool.map(lambda k: scheduled(workdir, changes[k], k), keys), strict=True)
        )
    wrong = {
        key: (sorted(rules_of(jobs)), sorted(expected_for_run_key(key)))
        for key, jobs in found.items()
        if rules_of(jobs) != expected_for_run_key(key)
    }
    assert not wrong, "key: (scheduled, expected)\n" + "\n".join(
        f"{k}: {v}" for k, v in wrong.items()
    )


DATASET_VALUES: dict[str, Any] = {
    "description": "Reworded.",
    "ethics": [{"concern": "Reworded concern.", "status": "not_applicable"}],
    "sensitive": True,
    "positive_class": "background",
    "sequence_type": "rna",
    "allow_unpinned": True,
    "sources": None,  # a source key: own test
    "labels.from": "header",
    "labels.column": "class",
    "labels.regex": r"^(?P<id>\S+) (?P<label>\S+)",
    "labels.table": "labels.tsv",
    "labels.table_id_column": "name",
    "labels.table_label_column": "class",
    "labels.names": {"bound": "bound_site"},
    "metadata.columns": ["batch"],
    "metadata.from_label": {"origin": {"bound": "chip", "background": "shuffle"}},
    "split.threshold": 0.7,
    "split.denominator": "shorter",
    "split.partition_column": "fold",
    "split.balance_columns": ["batch"],
    "split.method": "random",
    "split.fractions": {"train": 0.6, "tune": 0.2, "test": 0.2},
}
SOURCE_VALUES: dict[str, Any] = {
    "name": "bound2",
    "role": "unlabeled",
    "kind": {"kind": "local", "path": "data/bound.fa"},
    "url": "http://127.0.0.1:1/other.fa",
    "record": 123,
    "file": "x.fa",
    "query": "organism_id:9606",
    "release": "2025_03",
    "accessions": ["X00001.1"],
    "database": "protein",
    "package": "modlamp",
    "path": "data/x.fa",
    "sha256": "0" * 64,
    "member": "inner.fa",
    "format": "fasta",
    "header": {"header": False, "columns": ["id", "sequence"]},
    "skip_lines": 1,
    "columns": ["id", "sequence"],
    "id_column": "id",
    "sequence_column": "seq",
    "label": "bound_site",
    "metadata": {"batch": "one"},
}


def dataset_change(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    dataset = copy.deepcopy(base)
    set_key(dataset, key, value)
    if key == "labels.from" and value == "header":
        dataset["labels"]["regex"] = r"^(?P<label>\S+)"
    return dataset


def dataset_jobs(workdir: Path, config: dict, dataset: dict, name: str) -> set[str]:
    """Rules scheduled when the tiny dataset file is replaced by `dataset`: the run
    reads it from another datasets_dir, with the same name."""
    folder = workdir / "matrix" / f"ds_{name}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False))
    load_dataset(folder / "tiny.yaml")  # the change itself must be valid
    return rules_of(scheduled(workdir, {**config, "datasets_dir": str(folder)}, f"ds_{name}"))


def test_dataset_file_keys_rerun_exactly_their_stages(finished):
    workdir, config, dataset = finished
    keys = [k for k in dict.fromkeys(documented_keys()["dataset"]) if k != "sources"]
    assert set(keys) <= set(DATASET_VALUES), sorted(set(keys) - set(DATASET_VALUES))

    def one(key: str) -> set[str]:
        return dataset_jobs(workdir, config, dataset_change(dataset, key, DATASET_VALUES[key]), key)

    with ThreadPoolExecutor(max_workers=2) as pool:
        found = dict(zip(keys, pool.map(one, keys), strict=True))
    wrong = {
        key: (sorted(jobs), sorted(expected_for_dataset_key(key)))
        for key, jobs in found.items()
        if jobs != expected_for_dataset_key(key)
    }
    assert not wrong, "key: (scheduled, expected)\n" + "\n".join(
        f"{k}: {v}" for k, v in wrong.items()
    )


def test_source_keys_refetch(finished):
    """Every key of a source decides the download: a change refetches, and everything
    after fetch follows."""
    workdir, config, dataset = finished
    keys = list(dict.fromkeys(documented_keys()["source"]))
    assert set(keys) <= set(SOURCE_VALUES), sorted(set(keys) - set(SOURCE_VALUES))
    local = workdir / SOURCE_VALUES["kind"]["path"]  # a local source must exist: it is an input
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(">a\nACGT\n")
    # The changed value need not make a source that downloads; the dry run only plans.
    changes = {}
    for key in keys:
        changed = copy.deepcopy(dataset)
        value = SOURCE_VALUES[key]
        changed["sources"][0].update(
            value if isinstance(value, dict) and key != "metadata" else {key: value}
        )
        changes[key] = changed
    for key, changed in changes.items():
        folder = workdir / "matrix" / f"src_{key}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "tiny.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))

    def one(key: str) -> set[str]:
        folder = workdir / "matrix" / f"src_{key}"
        jobs = scheduled(workdir, {**config, "datasets_dir": str(folder)}, f"src_{key}")
        return rules_of(jobs)

    valid = [key for key in keys if _valid_dataset(workdir / "matrix" / f"src_{key}" / "tiny.yaml")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = dict(zip(valid, pool.map(one, valid), strict=True))
    assert set(valid) == set(keys), f"changes that are not valid sources: {set(keys) - set(valid)}"
    # an unlabeled source makes the dataset one with pre-training: its rules join
    expected = {key: from_stages("fetch", pretraining=key == "role") for key in keys}
    wrong = {k: sorted(v) for k, v in found.items() if v != expected[k]}
    assert not wrong, wrong


def _valid_dataset(path: Path) -> bool:
    try:
        load_dataset(path)
    except Exception:
        return False
    return True


OWN_TESTS = ("datasets", "datasets_dir", "pretrain.from")


def test_moving_the_dataset_files_reruns_nothing(finished):
    workdir, config, dataset = finished
    folder = workdir / "matrix" / "moved"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False))
    assert scheduled(workdir, {**config, "datasets_dir": str(folder)}, "moved") == set()


def test_a_new_dataset_schedules_only_itself(finished):
    workdir, config, dataset = finished
    folder = workdir / "matrix" / "two"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tiny", "tiny2"):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False))
    jobs = scheduled(
        workdir, {**config, "datasets": ["tiny", "tiny2"], "datasets_dir": str(folder)}, "two"
    )
    assert rules_of(jobs, "tiny") == set()
    assert rules_of(jobs, "tiny2") == from_stages("fetch")


def _table(wrong: dict[str, Any]) -> str:
    return "key: (scheduled, expected)\n" + "\n".join(f"{k}: {v}" for k, v in wrong.items())


def test_pretrain_from_reruns_targets_not_the_source(finished):
    """pretrain.from (supervised pre-training, Tip 5) on the finished tiny run. Alone,
    'tiny' names the source, which is not pre-trained: nothing reruns. With a second
    dataset tiny2 (the same file, new, so all of it is planned): as a target of tiny2,
    tiny's split reruns (it now reads tiny2's train.tsv and names it in its params) with
    the pre-training rules and everything after the split; as the source, none of
    tiny's stages reruns and tiny2 gets the pre-training rules."""
    workdir, config, dataset = finished

    def with_from(run: dict[str, Any], source: str) -> dict[str, Any]:
        return {**run, "pretrain": {**run["pretrain"], "from": source}}

    alone = scheduled(workdir, with_from(config, "tiny"), "from_alone")
    assert rules_of(alone) == set()
    folder = workdir / "matrix" / "from_two"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tiny", "tiny2"):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(dataset, sort_keys=False))
    two = {**config, "datasets": ["tiny", "tiny2"], "datasets_dir": str(folder)}
    as_target = scheduled(workdir, with_from(two, "tiny2"), "from_target")
    assert rules_of(as_target, "tiny") == from_stages("split", pretraining=True)
    assert rules_of(as_target, "tiny2") == from_stages("fetch")
    as_source = scheduled(workdir, with_from(two, "tiny"), "from_source")
    assert rules_of(as_source, "tiny") == set()
    assert rules_of(as_source, "tiny2") == from_stages("fetch", pretraining=True)
