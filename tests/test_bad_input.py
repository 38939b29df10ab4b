"""The bad-input corpus: what a new user gets wrong, and what the workflow then says.

Every case asserts the exit status (an InputError, which the rule scripts turn
into a non-zero exit with the message alone, or the Snakemake run failing), a
message naming the file and the line or the key, and that no output was left
half-written. Config mistakes are caught when the workflow starts, before any
job (tests/test_bad_config.py); data mistakes when the stage that reads the data
runs (here); whole Snakemake runs: tests/test_bad_runs.py.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import write_yaml

from deeprules import curate, fetch
from deeprules.config import (
    curate_settings,
    fetch_settings,
    load_dataset,
)
from deeprules.fetch import Downloader, FetchError, extract_member, fetch_source
from deeprules.io import read_tsv
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
    tables = ("sequences", "dropped", "unlabeled", "unlabeled_dropped")
    outputs = {name: folder / "curate" / f"{name}.tsv" for name in tables}
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
    tables = ("sequences", "dropped", "unlabeled", "unlabeled_dropped")
    outputs = {name: tmp_path / "curate" / f"{name}.tsv" for name in tables}
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
