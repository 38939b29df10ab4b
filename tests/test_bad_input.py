"""The bad-input corpus: what a new user gets wrong, and what the workflow then says.

Every case asserts the exit status (an InputError, which the rule scripts turn
into a non-zero exit with the message alone, or the Snakemake run failing), a
message naming the file and the line or the key, and that no output was left
half-written. Config mistakes are caught when the workflow starts, before any
job; data mistakes when the stage that reads the data runs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO, run_workflow, write_yaml

from deeprules import curate, fetch
from deeprules.config import (
    config_layers,
    curate_settings,
    fetch_settings,
    load_dataset,
    load_datasets,
    validate_run_config,
)
from deeprules.config_checks import check_yaml_syntax
from deeprules.fetch import Downloader, FetchError, extract_member, fetch_source
from deeprules.io import InputError, read_tsv
from deeprules.rule import Job, run_rule

FETCH = {"retries": 0, "backoff_seconds": 0, "timeout_seconds": 5, "endpoints": {}}
STRICT = {"on_invalid": "error", "min_per_class": 1}
LENIENT = {"on_invalid": "drop", "min_per_class": 1}
DNA_A = ">p1\nACGTACGT\n>p2\nAAAACCCC\n"
DNA_B = ">n1\nTTTTGGGG\n>n2\nGGGGCCCA\n"
MANY = "".join(f">r{i}\nACGTACGTAC\n" for i in range(5000)).encode()  # compresses well


def two_sources(first: str = "pos.fa", second: str = "neg.fa", **extra) -> dict:
    return {
        "sequence_type": "dna",
        "sources": [
            {"name": "pos", "kind": "local", "path": first, "label": "bound"},
            {"name": "neg", "kind": "local", "path": second, "label": "unbound"},
        ],
        "labels": {"from": "source"},
        **extra,
    }


def table_source(path: str = "seqs.csv", **labels) -> dict:
    return {
        "sequence_type": "dna",
        "sources": [{"name": "s", "kind": "local", "path": path, "id_column": "id"}],
        "labels": {"from": "column", **labels},
    }


def as_rule(stage, inputs: dict, outputs: dict, settings: dict, log: Path) -> str:
    """Run `stage` as its rule script does; it must exit non-zero with its message, logged,
    leaving none of the outputs."""

    def as_snakemake(files: dict) -> dict:  # Snakemake hands over text paths
        return {k: [str(f) for f in v] if isinstance(v, list) else str(v) for k, v in files.items()}

    smk = SimpleNamespace(
        input=as_snakemake(inputs),
        output=as_snakemake(outputs),
        params=SimpleNamespace(settings=settings),
        threads=1,
        log=[str(log)],
    )
    with pytest.raises(SystemExit) as stopped:
        run_rule(smk, stage)
    message = stopped.value.code
    assert isinstance(message, str) and message  # sys.exit(text): exit status 1
    assert message in log.read_text()
    files = [f for v in outputs.values() for f in (v if isinstance(v, list) else [v])]
    assert not [path for path in files if Path(path).exists()]
    return message


def fetched(folder: Path, dataset: dict, settings: dict) -> tuple[Path, dict, dict]:
    """Validate the dataset file and run fetch on its local sources, as the rules would."""
    loaded = load_dataset(write_yaml(folder / "toy.yaml", dataset))
    config = {"fetch": FETCH, "curate": settings}
    provenance = folder / "fetch" / "provenance.json"
    fetch.run(
        Job(
            {},
            {"files": folder / "fetch/files", "provenance": provenance},
            fetch_settings(config, loaded),
        )
    )
    return provenance, loaded, config


def curate_fails(folder: Path, dataset: dict, settings: dict = STRICT) -> str:
    provenance, loaded, config = fetched(folder, dataset, settings)
    outputs = {name: folder / "curate" / f"{name}.tsv" for name in ("sequences", "dropped")}
    outputs["summary"] = folder / "curate" / "summary.json"
    return as_rule(
        curate.run,
        {"provenance": provenance},
        outputs,
        curate_settings(config, loaded),
        folder / "logs" / "curate.log",
    )


def gz(text: bytes) -> bytes:
    return gzip.compress(text, mtime=0)


# --- data: the file the dataset points at is not what it should be ---------------------

CSV_HEADER = b"id,sequence,label\n"
DATA_CASES = [
    (
        "binary FASTA",
        {"pos.fa": b"\x00\x01\x02PK\x03\x04" * 20},
        two_sources(),
        STRICT,
        r"pos\.fa, line 1: binary data \(a NUL byte\)",
    ),
    (
        "Latin-1 FASTA header",
        {"pos.fa": b">p1 caf\xe9\nACGT\n"},
        two_sources(),
        STRICT,
        r"pos\.fa, line 1, column 8: byte 0xe9 is not UTF-8 text",
    ),
    (
        "Latin-1 on a later line",
        {"pos.fa": b">p1\nACGT\n>p2 \xff\nACGA\n"},
        two_sources(),
        STRICT,
        r"pos\.fa, line 3, column 5: byte 0xff",
    ),
    (
        "truncated gzip FASTA",
        {"pos.fa.gz": gz(MANY)[:300]},
        two_sources("pos.fa.gz"),
        STRICT,
        r"pos\.fa\.gz: the gzip file is damaged or cut short",
    ),
    (
        "gzip magic, then garbage",
        {"pos.fa.gz": b"\x1f\x8bnot really gzip at all"},
        two_sources("pos.fa.gz"),
        STRICT,
        r"pos\.fa\.gz: the gzip file is damaged or cut short",
    ),
    (
        "Latin-1 CSV",
        {"seqs.csv": CSV_HEADER + b"a,ACGT,x\nb,ACGA,\xe9t\xe9\n"},
        table_source(),
        STRICT,
        r"seqs\.csv, line 3, column 8: byte 0xe9",
    ),
    (
        "binary CSV",
        {"seqs.csv": b"\x00" * 64},
        table_source(),
        STRICT,
        r"seqs\.csv, line 1: binary data",
    ),
    (
        "truncated gzip CSV",
        {"seqs.csv.gz": gz(CSV_HEADER + b"".join(b"r%d,ACGT,x\n" % i for i in range(5000)))[:200]},
        table_source("seqs.csv.gz"),
        STRICT,
        r"seqs\.csv\.gz: the gzip file is damaged",
    ),
    *[
        (
            f"label {marker!r} is missing",
            {"seqs.csv": CSV_HEADER + f"a,ACGT,x\nb,ACGA,{marker}\n".encode()},
            table_source(),
            STRICT,
            rf"seqs\.csv, line 3: no label could be read.*label '{marker}' is a missing-value",
        )
        for marker in ("NA", "NaN", "None", "null", "n/a", "<NA>")
    ],
    (
        "empty label",
        {"seqs.csv": CSV_HEADER + b"a,ACGT,x\nb,ACGA,\n"},
        table_source(),
        STRICT,
        r"seqs\.csv, line 3: no label could be read for this record: the label is empty",
    ),
    (
        "id missing from the labels table",
        {"seqs.csv": b"id,sequence\na,ACGT\nc,ACGA\n", "labels.csv": b"id,label\na,x\n"},
        {**table_source(), "labels": {"from": "table", "table": "labels.csv"}},
        STRICT,
        r"seqs\.csv, line 3: no label could be read.*id 'c' is not in labels\.table",
    ),
    (
        "NA in the labels table",
        {"seqs.csv": b"id,sequence\na,ACGT\nc,ACGA\n", "labels.csv": b"id,label\na,x\nc,NA\n"},
        {**table_source(), "labels": {"from": "table", "table": "labels.csv"}},
        STRICT,
        r"seqs\.csv, line 3: .*label 'NA' is a missing-value marker",
    ),
    (
        "header does not match the regex",
        {"all.fa": b">s1 class=a\nACGT\n>s2 kind=b\nACGA\n"},
        {
            "sequence_type": "dna",
            "sources": [{"name": "all", "kind": "local", "path": "all.fa"}],
            "labels": {"from": "header", "regex": r"class=(?P<label>\w+)"},
        },
        STRICT,
        r"all\.fa, line 3: no label could be read.*does not match labels\.regex",
    ),
    (
        "empty label group",
        {"all.fa": b">s1 class=a\nACGT\n>s2 class=\nACGA\n"},
        {
            "sequence_type": "dna",
            "sources": [{"name": "all", "kind": "local", "path": "all.fa"}],
            "labels": {"from": "header", "regex": r"class=(?P<label>\w*)"},
        },
        STRICT,
        r"all\.fa, line 3: no label could be read.*the label is empty",
    ),
    (
        "sequence before the first header",
        {"pos.fa": b"ACGT\n>p1\nACGT\n"},
        two_sources(),
        STRICT,
        r"pos\.fa, line 1: sequence data before the first '>' header",
    ),
    ("empty FASTA", {"pos.fa": b""}, two_sources(), STRICT, r"pos\.fa: no FASTA header line"),
    (
        "header without an id",
        {"pos.fa": b">p1\nACGT\n>\nACGA\n"},
        two_sources(),
        STRICT,
        r"pos\.fa, line 3: header line '>' has no identifier",
    ),
    (
        "letters outside the alphabet",
        {"pos.fa": b">p1\nACGT\n>p2\nACJT\n"},
        two_sources(),
        STRICT,
        r"pos\.fa, line 3: characters not in the alphabet: J",
    ),
    (
        "repeated id",
        {"pos.fa": b">p1\nACGT\n>p1\nACGA\n"},
        two_sources(),
        STRICT,
        r"pos\.fa, line 3: id 'p1' appears earlier",
    ),
    (
        "every record a label conflict",
        {"pos.fa": DNA_A.encode(), "neg.fa": DNA_A.replace(">p", ">n").encode()},
        two_sources(),
        STRICT,
        r"every record was a label conflict.*label_conflict",
    ),
    (
        "one class left after dropping NA labels",
        {"seqs.csv": CSV_HEADER + b"a,ACGT,x\nb,ACGA,NA\nc,AGGA,NA\n"},
        table_source(),
        LENIENT,
        r"only one class after curation \('x'\); 2 record\(s\) dropped \(2 missing_label; "
        r"first: 'b', seqs\.csv, line 3",
    ),
    (
        "nothing usable",
        {"pos.fa": b">p1\nAXGT\n", "neg.fa": b">n1\nJJJJ\n"},
        two_sources(),
        LENIENT,
        r"no usable records.*2 record\(s\) dropped \(2 invalid_alphabet",
    ),
    (
        "too few per class",
        {"pos.fa": DNA_A.encode(), "neg.fa": b">n1\nTTTT\n"},
        two_sources(),
        {**STRICT, "min_per_class": 2},
        r"'unbound' has 1 sequences .*min_per_class = 2",
    ),
    (
        "missing column",
        {"seqs.csv": b"id,seq,label\na,ACGT,x\n"},
        table_source(),
        STRICT,
        r"seqs\.csv: column\(s\) 'sequence' not found; columns are: id, seq, label",
    ),
    (
        "unknown file format",
        {"seqs.txt": b"ACGT\n"},
        table_source("seqs.txt"),
        STRICT,
        r"seqs\.txt: cannot tell the format from the file name; set 'format'",
    ),
    (
        "unterminated quote",
        {"seqs.csv": CSV_HEADER + b'a,"ACGT,x\n'},
        table_source(),
        STRICT,
        r"seqs\.csv: cannot read as CSV",
    ),
]


@pytest.mark.parametrize(
    ("files", "dataset", "settings", "message"),
    [case[1:] for case in DATA_CASES],
    ids=[case[0] for case in DATA_CASES],
)
def test_bad_data_stops_curate_naming_file_and_line(
    tmp_path, monkeypatch, files, dataset, settings, message
):
    monkeypatch.chdir(tmp_path)
    for name, content in {"pos.fa": DNA_A.encode(), "neg.fa": DNA_B.encode(), **files}.items():
        Path(name).write_bytes(content)
    assert_matches(curate_fails(tmp_path, dataset, settings), message)


def assert_matches(text: str, pattern: str) -> None:
    import re

    assert re.search(pattern, text, flags=re.DOTALL), f"{pattern!r} not in:\n{text}"


@pytest.mark.parametrize("changed", ["pos.fa", "labels.csv"])
def test_a_local_file_changed_after_fetch_is_refused(tmp_path, monkeypatch, changed):
    """curate verifies every file against the SHA-256 fetch recorded."""
    monkeypatch.chdir(tmp_path)
    Path("pos.fa").write_text(">a\nACGT\n>c\nACGA\n")
    Path("labels.csv").write_text("id,label\na,x\nc,y\n")
    dataset = {
        "sequence_type": "dna",
        "sources": [{"name": "pos", "kind": "local", "path": "pos.fa"}],
        "labels": {"from": "table", "table": "labels.csv"},
    }
    provenance, loaded, config = fetched(tmp_path, dataset, STRICT)
    recorded = json.loads(provenance.read_text())
    assert recorded["label_table"]["sha256"] == hashlib.sha256(b"id,label\na,x\nc,y\n").hexdigest()
    with open(changed, "a") as handle:
        handle.write("z,x\n" if changed == "labels.csv" else ">z\nACGG\n")
    outputs = {name: tmp_path / "curate" / f"{name}.tsv" for name in ("sequences", "dropped")}
    outputs["summary"] = tmp_path / "curate" / "summary.json"
    message = as_rule(
        curate.run,
        {"provenance": provenance},
        outputs,
        curate_settings(config, loaded),
        tmp_path / "curate.log",
    )
    assert_matches(
        message,
        rf"^{changed} changed after fetch recorded it \(provenance\.json: "
        r"sha256 [0-9a-f]{64}, now [0-9a-f]{64}\).*--forcerun fetch",
    )


def test_na_labels_go_to_the_ledger_and_never_become_a_class(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("seqs.csv").write_text("id,sequence,label\na,ACGT,x\nb,ACGA,NA\nc,AGGA,y\nd,TTTT,nan\n")
    provenance, loaded, _ = fetched(tmp_path, table_source(), LENIENT)
    table, ledger, summary = curate.curate(provenance, loaded, LENIENT)
    assert summary["labels"] == {"x": 1, "y": 1} and set(table["label"]) == {"x", "y"}
    assert list(ledger["reason"]) == ["missing_label", "missing_label"]
    named = {**table_source(), "labels": {"from": "column", "names": {"NA": "sodium"}}}
    provenance, loaded, _ = fetched(tmp_path, named, LENIENT)
    _, _, summary = curate.curate(provenance, loaded, LENIENT)
    assert summary["labels"] == {"sodium": 1, "x": 1, "y": 1}  # renamed: a real class


# --- the dataset file ----------------------------------------------------------------

GOOD = two_sources()
DATASET_FILE_CASES = [
    (
        "YAML syntax error",
        "sequence_type: dna\nsources: [\n  {name: a\n",
        r"toy\.yaml, line \d+, column \d+: not valid YAML",
    ),
    (
        "tab indentation",
        "sequence_type: dna\nlabels:\n\tfrom: source\n",
        r"toy\.yaml, line 3, column 1: not valid YAML: found character '\\t'",
    ),
    ("not a mapping", "- dna\n- protein\n", r"toy\.yaml: expected a YAML mapping"),
    (
        "missing sequence_type",
        {k: v for k, v in GOOD.items() if k != "sequence_type"},
        r"toy\.yaml is invalid: 'sequence_type' is a required property",
    ),
    (
        "unknown sequence type",
        {**GOOD, "sequence_type": "peptide"},
        r"toy\.yaml is invalid: key 'sequence_type': 'peptide' is not one of",
    ),
    (
        "gopher URL",
        {**GOOD, "sources": [{"name": "a", "kind": "url", "url": "gopher://x/a.fa", "label": "a"}]},
        r"toy\.yaml is invalid: key 'sources\[0\]\.url'",
    ),
    (
        "file:// as a remote source",
        {
            **GOOD,
            "sources": [{"name": "a", "kind": "url", "url": "file:///etc/passwd", "label": "a"}],
        },
        r"toy\.yaml is invalid: key 'sources\[0\]\.url': 'file:///etc/passwd' does not match",
    ),
    (
        "member outside the archive",
        {
            **GOOD,
            "sources": [
                {
                    "name": "a",
                    "kind": "local",
                    "path": "a.tar",
                    "member": "../../etc/passwd",
                    "label": "a",
                }
            ],
        },
        r"toy\.yaml: key 'sources\[0\]\.member' \('\.\./\.\./etc/passwd'\) must be a path inside",
    ),
    (
        "absolute member",
        {
            **GOOD,
            "sources": [
                {
                    "name": "a",
                    "kind": "local",
                    "path": "a.tar",
                    "member": "/etc/passwd",
                    "label": "a",
                }
            ],
        },
        r"toy\.yaml: key 'sources\[0\]\.member'",
    ),
    (
        "unbalanced header regex",
        {**GOOD, "labels": {"from": "header", "regex": r"class=(?P<label>\w+"}},
        r"toy\.yaml: key 'labels\.regex' \('class=\(\?P<label>\\w\+'\) is not a valid regular "
        r"expression: missing \), unterminated subpattern at position 6",
    ),
    (
        "regex without a label group",
        {**GOOD, "labels": {"from": "header", "regex": r"class=(\w+)"}},
        r"toy\.yaml: key 'labels\.regex' \('class=\(\\w\+\)'\) has no named group 'label'",
    ),
    (
        "repeated source names",
        {**GOOD, "sources": [GOOD["sources"][0]] * 2},
        r"toy\.yaml: key 'sources' needs unique source names, repeated: \['pos'\]",
    ),
    (
        "labels from source without a label",
        {**GOOD, "sources": [{"name": "a", "kind": "local", "path": "a.fa"}]},
        r"toy\.yaml: key 'sources\[0\]\.label' is required because labels\.from is 'source'",
    ),
    (
        "header false without columns",
        {
            **table_source(),
            "sources": [{"name": "s", "kind": "local", "path": "s.csv", "header": False}],
        },
        r"toy\.yaml: key 'sources\[0\]\.columns' is required when header is false",
    ),
    (
        "zenodo without a file",
        {**GOOD, "sources": [{"name": "z", "kind": "zenodo", "record": 1, "label": "a"}]},
        r"toy\.yaml is invalid: key 'sources\[0\]': 'file' is a required property",
    ),
    (
        "misspelt source key",
        {**GOOD, "sources": [{"name": "a", "kind": "local", "path": "a.fa", "lable": "a"}]},
        r"toy\.yaml is invalid: key 'sources\[0\]\.lable': unknown key; did you mean 'label'\?",
    ),
    (
        "unknown labels.from",
        {**GOOD, "labels": {"from": "filename"}},
        r"toy\.yaml is invalid: key 'labels\.from': 'filename' is not one of",
    ),
    (
        "accession with a space",
        {**GOOD, "sources": [{"name": "e", "kind": "ena", "accessions": ["AB 123"], "label": "a"}]},
        r"toy\.yaml is invalid: key 'sources\[0\]\.accessions\[0\]'",
    ),
    (
        "dataset file not UTF-8",
        b"description: caf\xe9\n",
        r"toy\.yaml: not a text file \(invalid continuation byte, byte 16\)",
    ),
]


@pytest.mark.parametrize(
    ("content", "message"),
    [case[1:] for case in DATASET_FILE_CASES],
    ids=[case[0] for case in DATASET_FILE_CASES],
)
def test_bad_dataset_file_names_file_and_key(tmp_path, content, message):
    path = tmp_path / "toy.yaml"
    if isinstance(content, dict):
        write_yaml(path, content)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError) as error:
        load_dataset(path)
    assert_matches(str(error.value), message)


# --- the run config ------------------------------------------------------------------


def search(family: str, parameter: str, spec: dict) -> dict:
    return {"baselines": {"search_spaces": {family: {parameter: spec}}}}


RUN_CONFIG_CASES = [
    ("seed is text", {"seed": "many"}, r"key 'seed': 'many' is not of type 'integer'"),
    ("misspelt top-level key", {"seeds": 1}, r"key 'seeds': unknown key; did you mean 'seed'\?"),
    (
        "misspelt nested key",
        {"cnn": {"tunner": "random"}},
        r"key 'cnn\.tunner': unknown key; did you mean 'tuner'\?",
    ),
    ("no datasets", {"datasets": []}, r"key 'datasets': \[\] should be non-empty"),
    (
        "fractions above 1",
        {"split": {"fractions": {"train": 0.8}}},
        r"key 'split\.fractions' must sum to 1, got train 0\.8 \+ tune 0\.15 \+ test 0\.15 = 1\.1",
    ),
    (
        "fractions below 1",
        {"split": {"fractions": {"train": 0.6}}},
        r"key 'split\.fractions' must sum to 1, got .* = 0\.9",
    ),
    (
        "a zero fraction",
        {"split": {"fractions": {"test": 0}}},
        r"key 'split\.fractions\.test': 0 is less than or equal to the minimum of 0",
    ),
    *[
        (
            f"inverted {name} range",
            {"cnn": {"search_space": {name: [high, low]}}},
            rf"key 'cnn\.search_space\.{name}' is a range \[low, high\], got \[{high:g}, {low:g}\]",
        )
        for name, low, high in (
            ("dropout", 0.1, 0.5),
            ("learning_rate", 0.0001, 0.01),
            ("l2", 1e-6, 1e-3),
        )
    ],
    *[
        (
            f"{first} above {later}",
            {"explore": {first: value_first, later: value_later}},
            rf"key 'explore\.{first}' \({value_first:g}\) must not exceed explore\.{later}",
        )
        for first, later, value_first, value_later in (
            ("auroc_warn", "auroc_fail", 0.8, 0.7),
            ("cramers_v_warn", "cramers_v_fail", 0.95, 0.9),
            ("position_v_warn", "position_v_fail", 0.6, 0.5),
            ("duplicate_fraction_warn", "duplicate_fraction_fail", 0.1, 0.05),
            ("balance_fail", "balance_warn", 0.3, 0.25),
        )
    ],
    (
        "unknown logistic-regression penalty",
        search("logistic_regression", "penalty", {"type": "categorical", "choices": ["l2", "l3"]}),
        r"key 'baselines\.search_spaces\.logistic_regression\.penalty\.choices\[1\]': 'l3' is not "
        r"one of \['l1', 'l2', 'elasticnet'\]",
    ),
    (
        "unknown naive Bayes variant",
        search("naive_bayes", "variant", {"type": "categorical", "choices": ["bernoulli"]}),
        r"key 'baselines\.search_spaces\.naive_bayes\.variant\.choices\[0\]'",
    ),
    (
        "unknown kNN weights",
        search("knn", "weights", {"type": "categorical", "choices": ["inverse"]}),
        r"key 'baselines\.search_spaces\.knn\.weights\.choices\[0\]'",
    ),
    (
        "inverted forest range",
        search("random_forest", "n_estimators", {"type": "int", "low": 300, "high": 50}),
        r"key 'baselines\.search_spaces\.random_forest\.n_estimators' has low \(300\) above high",
    ),
    (
        "log range from zero",
        search("rbf_svm", "gamma", {"type": "float", "low": 0.0, "high": 1.0, "log": True}),
        r"key 'baselines\.search_spaces\.rbf_svm\.gamma' is log-scaled and needs low > 0",
    ),
    (
        "identity bins decreasing",
        {"evaluate": {"identity_bins": [0.0, 0.5, 0.3, 1.0]}},
        r"key 'evaluate\.identity_bins' holds bin edges, which must increase",
    ),
    (
        "length bins repeated",
        {"evaluate": {"length_bins": [0, 20, 20, 100]}},
        r"key 'evaluate\.length_bins' holds bin edges, which must increase",
    ),
    ("unknown tuner", {"cnn": {"tuner": "grid"}}, r"key 'cnn\.tuner': 'grid' is not one of"),
    (
        "unknown on_invalid",
        {"curate": {"on_invalid": "skip"}},
        r"key 'curate\.on_invalid': 'skip' is not one of \['error', 'drop'\]",
    ),
    (
        "file:// endpoint",
        {"fetch": {"endpoints": {"zenodo": "file:///srv/zenodo"}}},
        r"key 'fetch\.endpoints\.zenodo': 'file:///srv/zenodo' does not match",
    ),
    (
        "empty ledger folder",
        {"evaluate": {"ledger_dir": ""}},
        r"key 'evaluate\.ledger_dir': '' should be non-empty",
    ),
]


@pytest.mark.parametrize(
    ("changes", "message"),
    [case[1:] for case in RUN_CONFIG_CASES],
    ids=[case[0] for case in RUN_CONFIG_CASES],
)
def test_bad_run_config_names_file_and_key(changes, message):
    with pytest.raises(InputError) as error:
        validate_run_config({"datasets": ["toy"], **changes})
    assert str(error.value).startswith("config/config.yaml")
    assert_matches(str(error.value), message)


def test_config_that_is_not_a_mapping():
    with pytest.raises(InputError, match=r"config/config\.yaml: expected a YAML mapping"):
        validate_run_config(["amp"])


def test_every_cross_key_problem_is_listed_at_once():
    with pytest.raises(InputError) as error:
        validate_run_config(
            {
                "datasets": ["toy"],
                "split": {"fractions": {"train": 0.9}},
                "explore": {"auroc_warn": 0.9},
            }
        )
    lines = str(error.value).splitlines()
    assert len(lines) == 2 and "split.fractions" in lines[0] and "auroc_warn" in lines[1]


def test_a_bad_key_is_blamed_on_the_config_file_that_set_it(tmp_path):
    main = write_yaml(tmp_path / "config/config.yaml", {"datasets": ["toy"], "seed": 1})
    extra = write_yaml(tmp_path / "extra.yaml", {"cnn": {"tunner": "random"}})
    layers = config_layers([str(main)], [extra], {})
    config = {"datasets": ["toy"], "seed": 1, "cnn": {"tunner": "random"}}
    with pytest.raises(InputError, match=rf"^{extra} is invalid: key 'cnn\.tunner'"):
        validate_run_config(config, layers=layers)
    fractions = write_yaml(tmp_path / "fractions.yaml", {"split": {"fractions": {"test": 0.3}}})
    layers = config_layers([str(main)], [fractions], {"seed": -1})
    with pytest.raises(InputError, match=r"^--config on the command line is invalid: key 'seed'"):
        validate_run_config({"datasets": ["toy"], "seed": -1}, layers=layers)
    with pytest.raises(InputError, match=rf"^{fractions}: key 'split\.fractions' must sum"):
        validate_run_config(
            {"datasets": ["toy"], "split": {"fractions": {"test": 0.3}}}, layers=layers
        )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "datasets:\n  - amp\nseed: [1\n",
            r"line 4, column 1: .*flow sequence that starts on "
            r"line 3, column 7",
        ),
        ('datasets:\n  - "amp\n', r"line 3, column 1: .*quoted scalar that starts on line 2"),
    ],
    ids=["unclosed bracket", "unclosed quote"],
)
def test_yaml_syntax_error_in_the_config_names_file_and_line(tmp_path, text, where):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        check_yaml_syntax([path])
    assert_matches(str(error.value), rf"^{path}, {where}")


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    write_yaml(tmp_path / "toy.yaml", GOOD)
    config = validate_run_config({"datasets": ["toy", "tyo"], "datasets_dir": str(tmp_path)})
    with pytest.raises(InputError, match=r"'datasets\[1\]': unknown dataset 'tyo'.*toy"):
        load_datasets(config)


# --- fetch: addresses and archive members --------------------------------------------


def test_a_member_resolving_outside_the_archive_is_refused(tmp_path):
    """Past the dataset-file check (e.g. a symlink inside the archive's folder)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data/a.fa", ">a\nACGT\n")
    (tmp_path / "a.zip").write_bytes(buffer.getvalue())
    (tmp_path / "secret.fa").write_text(">s\nACGT\n")
    with pytest.raises(FetchError, match=r"a\.zip: member '\.\./secret\.fa' points outside"):
        extract_member(tmp_path / "a.zip", "../secret.fa", tmp_path / "extracted")
    assert not (tmp_path / "extracted").exists()


def test_only_http_https_and_ftp_are_fetched(tmp_path):
    (tmp_path / "local.fa").write_text(">a\nACGT\n")
    with pytest.raises(FetchError, match=r"^file://.*only http, https and ftp addresses"):
        Downloader(retries=0).fetch((tmp_path / "local.fa").as_uri(), tmp_path / "out.fa")
    assert not (tmp_path / "out.fa").exists()


def test_a_zenodo_file_link_to_the_local_disk_is_refused(http_server, tmp_path):
    record = {"files": [{"key": "a.fa", "links": {"self": "file:///etc/hostname"}}]}
    http_server.add("/api/records/7", json.dumps(record).encode())
    source = {"name": "z", "kind": "zenodo", "record": 7, "file": "a.fa"}
    with pytest.raises(FetchError, match=r"Zenodo record 7 gives 'file:///etc/hostname'"):
        fetch_source(source, tmp_path / "z", Downloader(retries=0), {"zenodo": http_server.url})
    assert not (tmp_path / "z" / "a.fa").exists()


# --- later stages --------------------------------------------------------------------


def test_length_one_proteins_stop_baselines_naming_the_key(tmp_path):
    from test_baselines import output_paths, run_config

    from deeprules import baselines
    from deeprules.config import baselines_settings

    folder = tmp_path / "split"
    folder.mkdir()
    for partition in ("train", "tune"):
        rows = [
            {
                "id": f"{partition}{i}",
                "sequence": "ACDEFGHIKL"[i % 10],
                "label": "ab"[i % 2],
                "source": "s",
                "component": str(i),
            }
            for i in range(20)
        ]
        (folder / f"{partition}.tsv").write_text(
            "id\tsequence\tlabel\tsource\tcomponent\n"
            + "".join("\t".join(row.values()) + "\n" for row in rows)
        )
    (folder / "split_report.json").write_text(
        json.dumps({"classes": ["a", "b"], "positive_class": "b"})
    )
    config = run_config(families=["logistic_regression"], kmer_sizes={"protein": [1, 2]})
    settings = baselines_settings(config, {"name": "toy", "sequence_type": "protein"})
    outputs = output_paths(tmp_path / "out", ["logistic_regression"])
    inputs = {name: folder / f"{name}.tsv" for name in ("train", "tune")}
    inputs["split_report"] = folder / "split_report.json"
    message = as_rule(baselines.run, inputs, outputs, settings, tmp_path / "baselines.log")
    assert_matches(
        message,
        r"k-mer size\(s\) \[2\]: the longest training sequence has 1 "
        r"residue.*baselines\.kmer_sizes",
    )


def test_numeric_labels_work_in_the_baselines(tmp_path):
    """Labels '0' / '1' stay text; scikit-learn's forest used to refuse them."""
    from test_baselines import make_split, run_baselines, run_config

    folder = make_split(tmp_path / "split", classes=("0", "1"), train=60, tune=30, positive="1")
    summary = run_baselines(
        folder, run_config(trials=1, families=["random_forest"]), tmp_path / "out"
    )
    assert summary["best_model"] == "random_forest"
    predictions = read_tsv(tmp_path / "out" / "predictions.tsv")
    assert {"score_0", "score_1"} <= set(predictions.columns)


# --- before any job, through Snakemake ------------------------------------------------


def small_project(folder: Path, datasets: dict[str, dict]) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    import random

    rng = random.Random(0)
    for name in ("pos", "neg"):
        (folder / f"data/{name}.fa").write_text(
            "".join(
                f">{name}{i}\n{''.join(rng.choice('ACGT') for _ in range(40))}\n" for i in range(12)
            )
        )
    for name, dataset in datasets.items():
        write_yaml(folder / f"config/datasets/{name}.yaml", dataset)
    write_yaml(
        folder / "config/config.yaml",
        {"datasets": list(datasets), "budget": {"trials": 1}, "curate": {"min_per_class": 5}},
    )
    return folder


LOCAL = two_sources("data/pos.fa", "data/neg.fa")


@pytest.mark.slow
def test_snakemake_blames_a_second_configfile_and_starts_no_job(tmp_path):
    project = small_project(tmp_path, {"toy": LOCAL})
    extra = write_yaml(tmp_path / "extra.yaml", {"split": {"fractions": {"train": 0.9}}})
    result = run_workflow(project, "--dry-run", "--configfile", str(extra), check=False)
    assert result.returncode != 0
    assert f"{extra}: key 'split.fractions' must sum to 1" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_snakemake_stops_before_any_job_on_a_missing_local_file(tmp_path):
    project = small_project(tmp_path, {"toy": two_sources("data/pos.fa", "data/gone.fa")})
    result = run_workflow(project, "--dry-run", check=False)
    assert result.returncode != 0
    assert "data/gone.fa" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_an_edited_local_file_reruns_fetch_and_everything_after(tmp_path):
    project = small_project(tmp_path, {"toy": LOCAL})
    run_workflow(project, "results/toy/curate/sequences.tsv")
    plan = run_workflow(project, "--dry-run", "results/toy/curate/sequences.tsv")
    assert "Nothing to be done" in plan.stdout + plan.stderr
    time.sleep(1.1)  # a newer modification time
    with open(project / "data/neg.fa", "a") as handle:
        handle.write(">extra\nACGTACGTAC\n")
    plan = run_workflow(project, "--dry-run", "results/toy/curate/sequences.tsv")
    assert "rule fetch" in plan.stdout and "rule curate" in plan.stdout


@pytest.mark.slow
def test_one_bad_dataset_does_not_stop_the_other_and_is_named_last(tmp_path):
    project = small_project(
        tmp_path, {"good": LOCAL, "bad": two_sources("data/pos.fa", "data/bad.fa")}
    )
    (project / "data/bad.fa").write_bytes(b"\x00binary" * 10)
    result = run_workflow(
        project,
        "--profile",
        str(REPO / "workflow/profiles/local"),
        "results/good/curate/sequences.tsv",
        "results/bad/curate/sequences.tsv",
        check=False,
    )
    assert result.returncode != 0
    assert (project / "results/good/curate/sequences.tsv").exists()
    assert not (project / "results/bad/curate/sequences.tsv").exists()
    tail = (result.stdout + result.stderr).split("dataset(s) failed:")[-1]
    assert "bad: rule curate: data/bad.fa, line 1: binary data" in tail
    assert "without a failed job, run as far as they could: good" in tail


@pytest.mark.slow
def test_a_killed_run_resumes_with_the_same_command(tmp_path):
    """kill -9 leaves Snakemake's lock; the stale-lock step removes it (no Snakemake runs
    here any more) and the rerun finishes."""
    project = small_project(tmp_path, {"toy": LOCAL})
    command = [
        str(Path(sys.executable).parent / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--cores",
        "1",
        "--profile",
        str(REPO / "workflow/profiles/local"),
        "results/toy/explore/checks.json",
    ]
    first = subprocess.Popen(
        command,
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    locks = project / ".snakemake/locks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(locks.glob("*.lock")):
        time.sleep(0.1)
    time.sleep(2)
    os.killpg(first.pid, signal.SIGKILL)  # Snakemake and its job, as a crash would
    first.wait()
    assert list(locks.glob("*.lock")), "the kill must leave the lock behind"
    blocked = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert blocked.returncode != 0 and "cannot be locked" in blocked.stdout + blocked.stderr
    step = subprocess.run(
        [sys.executable, "-m", "deeprules.stale_lock"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "workflow")},
    )
    assert "removed a stale Snakemake lock" in step.stderr
    resumed = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (project / "results/toy/explore/checks.json").exists()
