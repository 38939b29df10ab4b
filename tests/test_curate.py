"""curate: parsing, validation with file and line, duplicates and the drop ledger."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from conftest import REPO, write_yaml

from deeprules import curate, fetch
from deeprules.config import curate_settings, fetch_settings, load_dataset
from deeprules.io import InputError, read_json, read_tsv
from deeprules.rule import Job

FETCH = {"retries": 0, "backoff_seconds": 0, "timeout_seconds": 5, "endpoints": {}}
STRICT = {"on_invalid": "error", "min_per_class": 1}
LENIENT = {"on_invalid": "drop", "min_per_class": 1}


def run_curate(tmp_path: Path, dataset: dict, settings: dict = STRICT):
    """Validate the dataset file, fetch its local sources, curate them."""
    return fetch_and_curate(
        tmp_path, load_dataset(write_yaml(tmp_path / "toy.yaml", dataset)), settings
    )


def fetch_and_curate(tmp_path: Path, dataset: dict, settings: dict):
    """The fetch and curate rules' stages, with settings built as the rules build them;
    returns curate's (sequences, ledger, summary) as written."""
    config = {"fetch": FETCH, "curate": settings}
    provenance = tmp_path / "provenance.json"
    fetch.run(
        Job(
            {},
            {"files": tmp_path / "files", "provenance": provenance},
            fetch_settings(config, dataset),
        )
    )
    names = ("sequences", "dropped", "summary", "unlabeled", "unlabeled_dropped")
    outputs = {name: tmp_path / "curate" / name for name in names}
    curate.run(Job({"provenance": provenance}, outputs, curate_settings(config, dataset)))
    return (
        read_tsv(outputs["sequences"]),
        read_tsv(outputs["dropped"]),
        read_json(outputs["summary"]),
    )


def two_files(tmp_path: Path, positives: str, negatives: str, **extra) -> dict:
    (tmp_path / "pos.fa").write_text(positives)
    (tmp_path / "neg.fa").write_text(negatives)
    return {
        "sequence_type": "dna",
        "sources": [
            {"name": "pos", "kind": "local", "path": str(tmp_path / "pos.fa"), "label": "bound"},
            {"name": "neg", "kind": "local", "path": str(tmp_path / "neg.fa"), "label": "unbound"},
        ],
        "labels": {"from": "source"},
        **extra,
    }


def test_positives_negatives_layout_with_duplicates_and_conflicts(tmp_path):
    positives = ">p1\nacgt acgt\n>p2\nAAAACCCC\n>p3\nACGTACGT\n>shared\nGGGGTTTT\n"
    negatives = ">n1\nTTTTAAAA\n>n2\nGGGG\nTTTT\n"
    table, ledger, summary = run_curate(tmp_path, two_files(tmp_path, positives, negatives))
    assert list(table.columns[:4]) == ["id", "sequence", "label", "source"]
    assert dict(zip(table["id"], table["sequence"], strict=True)) == {
        "p1": "ACGTACGT",
        "p2": "AAAACCCC",
        "n1": "TTTTAAAA",
    }
    reasons = dict(zip(ledger["id"], ledger["reason"], strict=True))
    assert reasons == {"shared": "label_conflict", "n2": "label_conflict", "p3": "exact_duplicate"}
    assert "as 'p1', which is kept" in ledger.set_index("id").loc["p3", "detail"]
    assert ledger["sequence_sha256"].str.len().eq(16).all()
    assert summary["records_read"] == 6 and summary["records_kept"] == 3
    assert summary["labels"] == {"bound": 2, "unbound": 1}
    assert summary["dropped_per_reason"] == {"label_conflict": 2, "exact_duplicate": 1}


def test_fasta_without_header_line_names_file_and_line(tmp_path):
    dataset = two_files(tmp_path, "\nACGT\n>p1\nACGT\n", ">n1\nTTTT\n")
    with pytest.raises(InputError, match=r"pos\.fa, line 2: sequence data before the first '>'"):
        run_curate(tmp_path, dataset)


@pytest.mark.parametrize(
    ("positives", "message"),
    [
        (">p1\nACGT\n>p2\nACXT\n", r"pos\.fa, line 3: characters not in the alphabet: X"),
        (">p1\nACGT\n>p2\n>p3\nACGA\n", r"pos\.fa, line 3: record has no sequence"),
        (">p1\nACGT\n>p1 again\nACGA\n", r"pos\.fa, line 3: id 'p1' appears earlier"),
    ],
    ids=["bad-characters", "empty-record", "duplicate-id"],
)
def test_invalid_record_fails_with_file_and_line(tmp_path, positives, message):
    with pytest.raises(InputError, match=message) as error:
        run_curate(tmp_path, two_files(tmp_path, positives, ">n1\nTTTT\n"))
    assert "curate.on_invalid: drop" in str(error.value)


def test_invalid_records_go_to_the_ledger_when_asked(tmp_path):
    positives = ">p1\nACGT\n>p2\nACXT\n>p3\n>p1\nGGGA\n"
    table, ledger, _ = run_curate(tmp_path, two_files(tmp_path, positives, ">n1\nTTTT\n"), LENIENT)
    assert list(table["id"]) == ["p1", "n1"]
    assert list(ledger["reason"]) == ["invalid_alphabet", "empty_sequence", "duplicate_id"]
    assert ledger["detail"].str.contains(r"pos\.fa, line \d").all()


def test_header_regex_labels_metadata_and_gzip(tmp_path):
    text = (
        ">s1 class=tf species=human\nACGUACGU\n"
        ">s2 class=ctrl species=mouse\nUUUUGGGG\n"
        ">s3 nolabel\nACGA\n"
    )
    with gzip.open(tmp_path / "all.fa.gz", "wt") as handle:
        handle.write(text)
    dataset = {
        "sequence_type": "rna",
        "sources": [{"name": "all", "kind": "local", "path": str(tmp_path / "all.fa.gz")}],
        "labels": {"from": "header", "regex": r"class=(?P<label>\w+) species=(?P<species>\w+)"},
    }
    with pytest.raises(InputError, match=r"all\.fa\.gz, line 5: no label could be read"):
        run_curate(tmp_path, dataset)
    table, ledger, summary = run_curate(tmp_path, dataset, LENIENT)
    assert list(table["label"]) == ["tf", "ctrl"] and list(table["species"]) == ["human", "mouse"]
    assert summary["metadata_columns"] == ["species"] and list(ledger["reason"]) == [
        "missing_label"
    ]


def test_csv_with_metadata_and_side_table_labels(tmp_path):
    (tmp_path / "seqs.tsv").write_text("name\tseq\tbatch\na\tMKVL\tb1\nb\tMKVA\tb2\nc\tMKKK\tb1\n")
    (tmp_path / "labels.csv").write_text("id,label\na,toxin\nb,other\nc,other\n")
    dataset = {
        "sequence_type": "protein",
        "sources": [
            {
                "name": "s",
                "kind": "local",
                "path": str(tmp_path / "seqs.tsv"),
                "id_column": "name",
                "sequence_column": "seq",
            }
        ],
        "labels": {"from": "table", "table": str(tmp_path / "labels.csv")},
        "metadata": {"columns": ["batch"]},
    }
    table, _, _ = run_curate(tmp_path, dataset)
    assert list(table["label"]) == ["toxin", "other", "other"] and list(table["batch"]) == [
        "b1",
        "b2",
        "b1",
    ]


def test_csv_missing_column_lists_the_columns_there(tmp_path):
    (tmp_path / "seqs.csv").write_text("sequence,activity\nMKVL,1\nMKVA,0\n")
    dataset = {
        "sequence_type": "protein",
        "sources": [{"name": "s", "kind": "local", "path": str(tmp_path / "seqs.csv")}],
        "labels": {"from": "column", "column": "class"},
    }
    with pytest.raises(
        InputError,
        match=r"seqs\.csv: column\(s\) 'class' not found; columns are: sequence, activity",
    ):
        run_curate(tmp_path, dataset)


def test_csv_bad_character_names_the_line(tmp_path):
    (tmp_path / "seqs.csv").write_text("sequence,label\nMKVL,1\nMK1L,0\n")
    dataset = {
        "sequence_type": "protein",
        "sources": [{"name": "s", "kind": "local", "path": str(tmp_path / "seqs.csv")}],
        "labels": {"from": "column"},
    }
    with pytest.raises(InputError, match=r"seqs\.csv, line 3: characters not in the alphabet: 1"):
        run_curate(tmp_path, dataset)


def test_one_class_only_and_too_few_per_class_are_errors(tmp_path):
    dataset = two_files(tmp_path, ">p1\nACGT\n>p2\nAAAA\n", ">n1\nACGT\n")
    with pytest.raises(InputError, match="only one class after curation"):
        run_curate(tmp_path, dataset)
    dataset = two_files(tmp_path, ">p1\nACGT\n>p2\nAAAA\n", ">n1\nTTTT\n")
    with pytest.raises(InputError, match=r"'unbound' has 1 sequences .* curate.min_per_class = 2"):
        run_curate(tmp_path, dataset, {**STRICT, "min_per_class": 2})


def test_default_amp_dataset_finds_the_redundant_rows(tmp_path):
    """modlAMP's AMPvsUniProt: 558 redundant rows and 22 sequences under both labels."""
    dataset = load_dataset(REPO / "config/datasets/amp.yaml")
    table, ledger, summary = fetch_and_curate(tmp_path, dataset, STRICT)
    assert summary["records_read"] == 5200 and len(table) == 4620
    conflicts = ledger[ledger["reason"] == "label_conflict"]
    assert conflicts["sequence_sha256"].nunique() == 22
    assert len(ledger) - conflicts["sequence_sha256"].nunique() == 558
    assert set(table.loc[table["label"] == "AMP", "database"]) == {"APD3"}


def test_unlabeled_sources_stay_out_of_the_labelled_set(tmp_path):
    """role: unlabeled records go to unlabeled.tsv with the same checks and their own
    ledger; sequences.tsv, dropped.tsv and the labelled counts are exactly those of the
    dataset without the unlabeled source."""
    from planted import as_fasta, few_label_task

    labelled, pool = few_label_task(20, 30, seed=3)
    positives = as_fasta(labelled[labelled["label"] == "bound"])
    negatives = as_fasta(labelled[labelled["label"] == "background"])
    (tmp_path / "without").mkdir()
    without = two_files(tmp_path / "without", positives, negatives)
    table0, ledger0, summary0 = run_curate(tmp_path / "without", without, LENIENT)
    extra = (
        as_fasta(pool)
        + ">unl0\nACGTACGT\n>bad1\nACGJT\n>lab0\nACGTTT\n>copy\n"
        + pool["sequence"].iat[1]
        + "\n"
    )
    (tmp_path / "pool.fa").write_text(extra)
    dataset = {
        **without,
        "sources": [
            {
                "name": "pool",
                "kind": "local",
                "path": str(tmp_path / "pool.fa"),
                "role": "unlabeled",
            },
            *without["sources"],
        ],
    }
    table, ledger, summary = run_curate(tmp_path, dataset, LENIENT)
    assert table.equals(table0) and ledger.equals(ledger0)
    assert {k: v for k, v in summary.items() if k != "unlabeled"} == summary0
    unlabeled = read_tsv(tmp_path / "curate" / "unlabeled")
    assert list(unlabeled.columns) == ["id", "sequence", "source"]
    assert unlabeled["id"].tolist() == pool["id"].tolist()  # in file order, nothing else
    dropped = read_tsv(tmp_path / "curate" / "unlabeled_dropped").set_index("id")["reason"]
    assert dropped.to_dict() == {
        "unl0": "duplicate_id",
        "bad1": "invalid_alphabet",
        "lab0": "duplicate_id",
        "copy": "exact_duplicate",
    }
    assert summary["unlabeled"]["records_read"] == 34
    assert summary["unlabeled"]["records_kept"] == 30
    roles = {s["name"]: s["role"] for s in read_json(tmp_path / "provenance.json")["sources"]}
    assert roles == {"pool": "unlabeled", "pos": "labeled", "neg": "labeled"}
    with pytest.raises(InputError, match=r"pool\.fa, line 61: id 'unl0' appears earlier"):
        run_curate(tmp_path, dataset, STRICT)
