"""Turn fetched files into one clean table, and account for every record removed.

Tips 4 and 7: exact duplicates inflate test scores and a sequence seen under two
labels is a contradiction no model can learn; both are removed here, and each
removal is written to a ledger rather than done silently.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from deeprules.contracts import IUPAC_ALPHABETS, sequence_problem
from deeprules.io import InputError, read_json, sequence_hash, sha256_of, write_json, write_tsv
from deeprules.rule import Job
from deeprules.textfiles import GZIP_ERRORS, locate_unreadable, open_text, refuse_binary, text_lines
from deeprules.unlabeled import keep_unlabeled, unlabeled_summary

log = logging.getLogger("deeprules.curate")

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".faa", ".ffn", ".fas")
LEDGER_COLUMNS = ["id", "sequence_sha256", "reason", "detail"]
# How spreadsheets, R and pandas write "no value": such a label is a missing label, not a
# class (unless labels.names renames it). Compared in lower case.
MISSING_LABELS = {"", "na", "n/a", "nan", "-nan", "none", "null", "<na>", "#n/a"}
NO_LABEL = "no label could be read for this record"
LABELED, UNLABELED = "labeled", "unlabeled"  # a source's role (dataset.schema.yaml)
NO_LABELS = {"from": UNLABELED}  # how an unlabeled source's records are read: no label


@dataclass
class Record:
    """One sequence as read, with where it was read from (for error messages)."""

    id: str
    sequence: str
    label: str | None
    source: str
    where: str
    metadata: dict[str, str]
    why_no_label: str = NO_LABEL


class Ledger:
    """Rows for dropped.tsv: every record the workflow removes, with the reason."""

    def __init__(self) -> None:
        self.rows: list[dict[str, str]] = []

    def drop(self, record_id: str, sequence: str, reason: str, detail: str) -> None:
        self.rows.append(
            {
                "id": record_id,
                "sequence_sha256": sequence_hash(sequence),
                "reason": reason,
                "detail": detail,
            }
        )

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=LEDGER_COLUMNS)


def file_format(path: Path, source: dict[str, Any]) -> str:
    if "format" in source:
        return source["format"]
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(FASTA_SUFFIXES):
        return "fasta"
    if name.endswith((".csv", ".tsv")):
        return name[-3:]
    raise InputError(
        f"{path}: cannot tell the format from the file name; set 'format' (fasta, csv or tsv) "
        f"for source '{source['name']}' in the dataset file"
    )


def read_fasta(path: Path) -> Iterator[tuple[str, str, int]]:
    """Yield (header, sequence, line number of the header).

    Biopython's parsers do not report line numbers; a biologist fixing a
    500,000-record file needs them, so this small reader tracks them.
    """
    header, chunks, start = None, [], 0
    for number, line in text_lines(path):
        line = line.strip()
        if line.startswith(">"):
            if header is not None:
                yield header, "".join(chunks), start
            header, chunks, start = line[1:].strip(), [], number
        elif header is None:
            if line and not line.startswith(";"):
                raise InputError(
                    f"{path}, line {number}: sequence data before the first '>' header line; "
                    "is this a FASTA file?"
                )
        else:
            chunks.append(line)
    if header is None:
        raise InputError(f"{path}: no FASTA header line ('>id ...') found; is the file empty?")
    yield header, "".join(chunks), start


def fasta_records(path: Path, source: dict[str, Any], labels: dict[str, Any]) -> Iterator[Record]:
    regex = re.compile(labels["regex"]) if labels["from"] == "header" else None
    for header, sequence, line in read_fasta(path):
        record_id = header.split()[0] if header else ""
        where = f"{path}, line {line}"
        if not record_id:
            raise InputError(f"{where}: header line '>' has no identifier")
        label, metadata = None, dict(source.get("metadata", {}))
        record = Record(record_id, sequence, label, source["name"], where, metadata)
        if regex is not None:
            match = regex.search(header)
            record.why_no_label = f"{NO_LABEL}: the header does not match labels.regex"
            if match:
                groups = {k: v for k, v in match.groupdict().items() if v is not None}
                record.label = groups.pop("label", None)
                metadata.update(groups)
                record.why_no_label = f"{NO_LABEL}: the 'label' group of labels.regex is empty"
        elif labels["from"] == "source":
            record.label = source["label"]
        yield record


def table_records(
    path: Path,
    fmt: str,
    source: dict[str, Any],
    labels: dict[str, Any],
    metadata_columns: list[str],
) -> Iterator[Record]:
    """Rows of a CSV/TSV; line numbers count the header and skipped lines."""
    table = read_table(
        path,
        fmt,
        skiprows=source["skip_lines"],
        header=0 if source["header"] else None,
        names=None if source["header"] else source["columns"],
        skipinitialspace=True,
    )
    needed = [source["sequence_column"], *metadata_columns]
    if "id_column" in source:
        needed.append(source["id_column"])
    if labels["from"] == "column":
        needed.append(labels["column"])
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: column(s) {', '.join(map(repr, missing))} not found; columns are: "
            f"{', '.join(map(str, table.columns))}. Fix the column names in the dataset file."
        )
    first_line = source["skip_lines"] + (2 if source["header"] else 1)
    for offset, values in enumerate(table.to_dict("records")):
        line = first_line + offset
        record_id = (
            values[source["id_column"]].strip()
            if "id_column" in source
            else f"{source['name']}_{line}"
        )
        label = None
        if labels["from"] == "column":
            label = values[labels["column"]].strip()
        elif labels["from"] == "source":
            label = source["label"]
        metadata = {
            **source.get("metadata", {}),
            **{c: values[c].strip() for c in metadata_columns},
        }
        yield Record(
            record_id,
            values[source["sequence_column"]],
            label,
            source["name"],
            f"{path}, line {line}",
            metadata,
        )


def read_table(path: Path, fmt: str, **options: Any) -> pd.DataFrame:
    """A CSV/TSV with every value as text; an unreadable file names file and line."""
    refuse_binary(path)
    try:
        with open_text(path) as handle:
            sep = "," if fmt == "csv" else "\t"
            return pd.read_csv(handle, sep=sep, dtype=str, keep_default_na=False, **options)
    except (*GZIP_ERRORS, UnicodeDecodeError) as error:
        locate_unreadable(path)  # raises with the line
        raise InputError(f"{path}: cannot read as {fmt.upper()}: {error}") from None
    except (pd.errors.ParserError, ValueError) as error:
        raise InputError(f"{path}: cannot read as {fmt.upper()}: {error}") from None


def side_table_labels(labels: dict[str, Any]) -> dict[str, str]:
    path = Path(labels["table"])
    if not path.is_file():
        raise InputError(f"labels.table: file '{path}' does not exist")
    fmt = "tsv" if path.name.lower().removesuffix(".gz").endswith(".tsv") else "csv"
    table = read_table(path, fmt)
    for key in ("table_id_column", "table_label_column"):
        if labels[key] not in table.columns:
            raise InputError(
                f"{path}: column '{labels[key]}' (labels.{key}) not found; columns are: "
                f"{', '.join(table.columns)}"
            )
    return dict(
        zip(
            table[labels["table_id_column"]].str.strip(),
            table[labels["table_label_column"]].str.strip(),
            strict=True,
        )
    )


def read_records(
    provenance: dict[str, Any], dataset: dict[str, Any], role: str = LABELED
) -> Iterator[Record]:
    """All records of the sources with `role`, in source order, labels as written in the
    files. Unlabeled sources (pre-training only) are read without labels or metadata
    columns: their files need neither."""
    labels = dataset["labels"] if role == LABELED else NO_LABELS
    columns = dataset["metadata"]["columns"] if role == LABELED else []
    side = None
    if labels["from"] == "table":
        verify_unchanged(Path(labels["table"]), provenance.get("label_table"))
        side = side_table_labels(labels)
    by_name = {s["name"]: s for s in dataset["sources"]}
    for entry in provenance["sources"]:
        source, path = by_name[entry["name"]], Path(entry["path"])
        if source["role"] != role:
            continue
        verify_unchanged(path, entry)
        fmt = file_format(path, source)
        if fmt == "fasta":
            records = fasta_records(path, source, labels)
        else:
            records = table_records(path, fmt, source, labels, columns)
        refuse_binary(path)
        for record in records:
            if side is not None:
                record.label = side.get(record.id)
                record.why_no_label = f"{NO_LABEL}: id '{record.id}' is not in labels.table"
            yield record


def verify_unchanged(path: Path, entry: dict[str, Any] | None) -> None:
    """The file must still be the one fetch recorded (Tip 4): a local source edited after
    fetch ran would otherwise be read without provenance saying so."""
    recorded = entry and entry.get("member_sha256", entry.get("sha256"))  # member: extracted
    if not recorded:
        raise InputError(
            f"{path}: provenance.json records no SHA-256 for it (written by an older fetch); "
            "rerun fetch: snakemake --forcerun fetch"
        )
    if not path.is_file():
        raise InputError(f"{path}: the file fetch recorded is gone; rerun fetch")
    now = sha256_of(path)
    if now != recorded:
        raise InputError(
            f"{path} changed after fetch recorded it (provenance.json: sha256 {recorded}, "
            f"now {now}). Rerun fetch so provenance records the new file: "
            "snakemake --forcerun fetch (then curate and what follows rerun too)."
        )


def normalise(sequence: str) -> str:
    """Upper case, no whitespace; a trailing '*' (stop) on a protein is not a residue."""
    return re.sub(r"\s+", "", sequence).upper().rstrip("*")


def invalid_reason(
    record: Record, alphabet: set[str], seen_ids: set[str]
) -> tuple[str, str] | None:
    """Why a record cannot be used, as (reason, detail), or None when it is fine."""
    problem = sequence_problem(record.sequence, alphabet)
    if problem is not None:
        return problem
    if record.label is None:
        return "missing_label", record.why_no_label
    if record.label.strip().lower() in MISSING_LABELS:
        shown = (
            f"label '{record.label}' is a missing-value marker (NA, NaN, None, null...)"
            if record.label
            else "label is empty"
        )
        return "missing_label", f"{NO_LABEL}: the {shown}"
    if record.id in seen_ids:
        return "duplicate_id", f"id '{record.id}' appears earlier in the input"
    return None


def run(job: Job) -> None:
    """Rule curate: provenance in; sequences, dropped (the ledger) and summary out; the
    unlabeled sources' sequences (pre-training only, Tip 5) and their ledger apart, so
    the labelled set is exactly what it would be without them."""
    settings = job.settings["curate"]
    table, ledger, summary = curate(job.inputs["provenance"], job.dataset, settings)
    unlabeled, unlabeled_ledger, unlabeled_facts = curate_unlabeled(
        job.inputs["provenance"], job.dataset, settings, set(table["id"])
    )
    if any(source["role"] == UNLABELED for source in job.dataset["sources"]):
        summary["unlabeled"] = unlabeled_facts
    write_tsv(job.outputs["unlabeled"], unlabeled)
    write_tsv(job.outputs["unlabeled_dropped"], unlabeled_ledger)
    write_outputs(
        table,
        ledger,
        summary,
        job.outputs["sequences"],
        job.outputs["dropped"],
        job.outputs["summary"],
    )


def curate_unlabeled(
    provenance_path: Path,
    dataset: dict[str, Any],
    curate_config: dict[str, Any],
    labelled_ids: set[str],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The unlabeled sources' records under the labelled set's alphabet checks (table of
    id, sequence, source; ledger; summary), see `deeprules.unlabeled`."""
    ledger = Ledger()
    records = read_records(read_json(provenance_path), dataset, UNLABELED)
    table, read = keep_unlabeled(
        (replace(r, sequence=normalise(r.sequence)) for r in records),
        IUPAC_ALPHABETS[dataset["sequence_type"]],
        curate_config["on_invalid"],
        labelled_ids,
        ledger,
    )
    return table, ledger.table(), unlabeled_summary(read, table, ledger.table())


def curate(
    provenance_path: Path, dataset: dict[str, Any], curate_config: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Read, validate and de-duplicate; return (sequences, ledger, summary).

    IUPAC ambiguity codes are accepted (explore measures how often they occur).
    """
    provenance = read_json(provenance_path)
    alphabet = IUPAC_ALPHABETS[dataset["sequence_type"]]
    names = dataset["labels"].get("names", {})  # optional, no schema default
    ledger, kept, seen_ids = Ledger(), [], set()
    read_per_source: Counter[str] = Counter()
    for record in read_records(provenance, dataset):
        read_per_source[record.source] += 1
        record.sequence = normalise(record.sequence)
        if record.label is not None:  # renamed first: labels.names may give 'NA' a meaning
            record.label = names.get(record.label, record.label)
        problem = invalid_reason(record, alphabet, seen_ids)
        if problem:
            reason, detail = problem
            if curate_config["on_invalid"] == "error":
                raise InputError(
                    f"{record.where}: {detail} (record '{record.id}', {reason}). Fix the file, "
                    "or set curate.on_invalid: drop in config/config.yaml to drop such records "
                    "into the ledger."
                )
            ledger.drop(record.id, record.sequence, reason, f"{record.where}: {detail}")
            continue
        seen_ids.add(record.id)
        kept.append(record)
    table = _as_table(kept, dataset, ledger)
    table = _drop_duplicates(table, ledger)
    _check_classes(table, curate_config["min_per_class"], dataset, ledger)
    summary = _summary(read_per_source, table, ledger, dataset)
    return table, ledger.table(), summary


def _as_table(records: list[Record], dataset: dict[str, Any], ledger: Ledger) -> pd.DataFrame:
    table = pd.DataFrame(
        [
            {"id": r.id, "sequence": r.sequence, "label": r.label, "source": r.source, **r.metadata}
            for r in records
        ],
    )
    if table.empty:
        raise InputError(
            f"dataset '{dataset['name']}': no usable records were read from its sources"
            f"{_what_was_dropped(ledger)}"
        )
    for column, mapping in dataset["metadata"]["from_label"].items():
        table[column] = table["label"].map(mapping).fillna("unknown")
    return table.fillna("")


def _drop_duplicates(table: pd.DataFrame, ledger: Ledger) -> pd.DataFrame:
    """Collapse exact duplicates to their first occurrence; remove sequences with two labels."""
    labels_per_sequence = table.groupby("sequence")["label"].transform("nunique")
    conflicts = table[labels_per_sequence > 1]
    for row in conflicts.itertuples():
        others = sorted(set(conflicts.loc[conflicts["sequence"] == row.sequence, "label"]))
        ledger.drop(
            row.id, row.sequence, "label_conflict", f"same sequence labelled {' and '.join(others)}"
        )
    table = table[labels_per_sequence <= 1]
    first = table.groupby("sequence")["id"].transform("first")
    repeated = table[table["id"] != first]
    for row, kept_id in zip(repeated.itertuples(), first[repeated.index], strict=True):
        ledger.drop(
            row.id,
            row.sequence,
            "exact_duplicate",
            f"same sequence and label as '{kept_id}', which is kept",
        )
    return table[table["id"] == first].reset_index(drop=True)


def _what_was_dropped(ledger: Ledger) -> str:
    """'; 12 records dropped (10 label_conflict, 2 invalid_alphabet; first: ...)' or ''."""
    dropped = ledger.table()
    if dropped.empty:
        return ""
    reasons = ", ".join(f"{n} {reason}" for reason, n in dropped["reason"].value_counts().items())
    first = dropped.iloc[0]
    return (
        f"; {len(dropped)} record(s) dropped ({reasons}; first: '{first['id']}', {first['detail']})"
    )


def _check_classes(
    table: pd.DataFrame, minimum: int, dataset: dict[str, Any], ledger: Ledger
) -> None:
    counts = table["label"].value_counts()
    reasons = set(ledger.table()["reason"])
    if table.empty and reasons == {"label_conflict"}:
        raise InputError(
            f"dataset '{dataset['name']}': every record was a label conflict (the same "
            f"sequence under two labels), so nothing is left to learn{_what_was_dropped(ledger)}."
            " Check how the labels section of the dataset file assigns labels (the same file "
            "given as two sources?)."
        )
    if len(counts) < 2:
        shown = ", ".join(f"'{label}'" for label in counts.index) or "none"
        raise InputError(
            f"dataset '{dataset['name']}': only one class after curation ({shown})"
            f"{_what_was_dropped(ledger)}; a classifier needs at least two. Check the labels "
            "section of the dataset file."
        )
    small = counts[counts < minimum]
    if not small.empty:
        detail = ", ".join(f"'{label}' has {n}" for label, n in small.items())
        raise InputError(
            f"dataset '{dataset['name']}': {detail} sequences after curation, fewer than "
            f"curate.min_per_class = {minimum}; add data, merge classes, or lower the minimum."
        )


def _summary(
    read_per_source: Counter[str], table: pd.DataFrame, ledger: Ledger, dataset: dict[str, Any]
) -> dict[str, Any]:
    dropped = ledger.table()
    return {
        "dataset": dataset["name"],
        "sequence_type": dataset["sequence_type"],
        "records_read": sum(read_per_source.values()),
        "records_read_per_source": dict(read_per_source),
        "records_kept": len(table),
        "records_dropped": len(dropped),
        "dropped_per_reason": dropped["reason"].value_counts().to_dict(),
        "labels": table["label"].value_counts().sort_index().to_dict(),
        "metadata_columns": [
            c for c in table.columns if c not in ("id", "sequence", "label", "source")
        ],
    }


def write_outputs(
    table: pd.DataFrame,
    ledger: pd.DataFrame,
    summary: dict[str, Any],
    sequences: Path,
    dropped: Path,
    summary_path: Path,
) -> None:
    write_tsv(sequences, table)
    write_tsv(dropped, ledger)
    write_json(summary_path, summary)
    log.info(
        "%d records read, %d kept, %d dropped %s; classes %s",
        summary["records_read"],
        summary["records_kept"],
        summary["records_dropped"],
        summary["dropped_per_reason"],
        summary["labels"],
    )
