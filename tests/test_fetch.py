"""fetch: every source kind against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from deeprules import fetch
from deeprules.config import fetch_settings
from deeprules.fetch import Downloader, FetchError, extract_member, fetch_dataset, fetch_source
from deeprules.io import read_json
from deeprules.rule import Job

FASTA = b">a1 positive\nACGTACGTAA\n>a2 negative\nTTTTGGGGCC\n"
SHA = hashlib.sha256(FASTA).hexdigest()


def endpoints(server) -> dict[str, str]:
    return {name: server.url for name in ("zenodo", "uniprot", "ena", "ncbi")}


def fetch_config(server) -> dict:
    return {
        "retries": 3,
        "backoff_seconds": 0,
        "timeout_seconds": 5,
        "endpoints": endpoints(server),
    }


def dataset(*sources: dict, allow_unpinned: bool = False) -> dict:
    """The keys of a validated dataset file that fetch_settings reads."""
    return {
        "name": "toy",
        "sources": [{"role": "labeled", **source} for source in sources],  # schema default
        "allow_unpinned": allow_unpinned,
        "labels": {"from": "source"},
    }


def run_fetch(dataset: dict, config: dict, files: Path, provenance: Path) -> dict:
    """The fetch rule's stage, with its settings built as the rule builds them."""
    settings = fetch_settings({"fetch": config}, dataset)
    fetch.run(Job({}, {"files": files, "provenance": provenance}, settings))
    return read_json(provenance)


def fetch_one(server, tmp_path: Path, source: dict) -> dict:
    return fetch_source(
        source,
        tmp_path / source["name"],
        Downloader(retries=3, backoff_seconds=0),
        endpoints(server),
    )


def test_good_file_is_verified_and_recorded(http_server, tmp_path):
    url = http_server.add(
        "/data/toy.fa",
        FASTA,
        headers={"ETag": '"v1"', "Last-Modified": "Mon, 02 Jun 2025 10:00:00 GMT"},
    )
    summary = fetch_dataset(
        dataset({"name": "toy", "kind": "url", "url": url, "sha256": SHA}),
        fetch_config(http_server),
        tmp_path / "files",
        tmp_path / "provenance.json",
    )
    record = read_json(tmp_path / "provenance.json")["sources"][0]
    assert record == summary["sources"][0]
    assert Path(record["path"]).read_bytes() == FASTA
    assert record["sha256"] == SHA and record["size"] == len(FASTA) and record["pinned"]
    assert record["etag"] == '"v1"' and record["last_modified"].startswith("Mon, 02 Jun 2025")
    assert record["retrieved_at"].endswith("+00:00")
    provenance = read_json(tmp_path / "provenance.json")
    assert provenance["schema_version"] == 1
    assert {"python", "snakemake", "pandas"} <= set(provenance["tools"])
    assert "git_commit" in provenance["workflow"]


def test_wrong_checksum_fails_with_both_digests_and_leaves_nothing(http_server, tmp_path):
    url = http_server.add("/toy.fa", FASTA)
    with pytest.raises(FetchError) as error:
        fetch_one(
            http_server, tmp_path, {"name": "toy", "kind": "url", "url": url, "sha256": "0" * 64}
        )
    assert "0" * 64 in str(error.value) and SHA in str(error.value)
    assert not list((tmp_path / "toy").iterdir())


def test_404_fails_at_once_naming_the_status(http_server, tmp_path):
    url = http_server.url + "/missing.fa"
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_one(http_server, tmp_path, {"name": "toy", "kind": "url", "url": url, "sha256": SHA})
    assert http_server.paths_requested() == ["/missing.fa"]


def test_500_then_200_is_retried(http_server, tmp_path):
    url = http_server.add("/flaky.fa", FASTA, statuses=[500, 503])
    record = fetch_one(
        http_server, tmp_path, {"name": "toy", "kind": "url", "url": url, "sha256": SHA}
    )
    assert Path(record["path"]).read_bytes() == FASTA
    assert http_server.paths_requested() == ["/flaky.fa"] * 3


def test_persistent_500_gives_up_with_advice(http_server, tmp_path):
    url = http_server.add("/down.fa", FASTA, statuses=[500] * 10)
    with pytest.raises(FetchError, match=r"giving up after 4 attempts.*fetch\.retries"):
        fetch_one(http_server, tmp_path, {"name": "toy", "kind": "url", "url": url, "sha256": SHA})
    assert not (tmp_path / "toy" / "down.fa.part").exists()


def test_body_cut_short_resumes_with_a_range_request(http_server, tmp_path):
    body = FASTA * 1000
    url = http_server.add("/big.fa", body, cut_first=True)
    source = {"name": "toy", "kind": "url", "url": url, "sha256": hashlib.sha256(body).hexdigest()}
    record = fetch_one(http_server, tmp_path, source)
    assert Path(record["path"]).read_bytes() == body
    (_, first), (_, second) = http_server.requests
    assert "Range" not in first
    assert second["Range"] == f"bytes={len(body) // 2}-"


def test_unpinned_remote_source_is_refused_unless_allowed(http_server, tmp_path):
    url = http_server.add("/toy.fa", FASTA)
    source = {"name": "toy", "kind": "url", "url": url}
    with pytest.raises(FetchError, match="allow_unpinned: true"):
        run_fetch(dataset(source), fetch_config(http_server), tmp_path / "f", tmp_path / "p.json")
    assert http_server.requests == [] and not (tmp_path / "p.json").exists()
    summary = run_fetch(
        dataset(source, allow_unpinned=True),
        fetch_config(http_server),
        tmp_path / "f",
        tmp_path / "p.json",
    )
    assert summary["allow_unpinned"] and summary["sources"][0]["pinned"] is False


def test_zenodo_record_pins_the_version(http_server, tmp_path):
    http_server.add("/records/42/files/toy.fa", FASTA)
    record_json = {
        "doi": "10.5281/zenodo.42",
        "metadata": {"version": "v2.1", "publication_date": "2024-05-01"},
        "files": [
            {
                "key": "toy.fa",
                "checksum": "md5:abc",
                "links": {"self": http_server.url + "/records/42/files/toy.fa"},
            }
        ],
    }
    http_server.add("/api/records/42", json.dumps(record_json).encode())
    source = {"name": "toy", "kind": "zenodo", "record": 42, "file": "toy.fa", "sha256": SHA}
    record = fetch_one(http_server, tmp_path, source)
    assert record["version"] == "v2.1" and record["doi"] == "10.5281/zenodo.42"
    assert record["zenodo_record"] == 42 and Path(record["path"]).read_bytes() == FASTA
    with pytest.raises(FetchError, match=r"has no file 'other\.fa'; its files are: toy\.fa"):
        fetch_one(http_server, tmp_path, {**source, "file": "other.fa"})


def test_uniprot_records_release_and_refuses_another(http_server, tmp_path):
    release = {"X-UniProt-Release": "2025_03", "X-UniProt-Release-Date": "18-June-2025"}
    http_server.add(
        "/uniprotkb/stream?query=length%3A%5B10+TO+50%5D&format=fasta", FASTA, headers=release
    )
    source = {"name": "up", "kind": "uniprot", "query": "length:[10 TO 50]", "sha256": SHA}
    record = fetch_one(http_server, tmp_path, source)
    assert (
        record["uniprot_release"] == "2025_03" and record["uniprot_release_date"] == "18-June-2025"
    )
    with pytest.raises(
        FetchError, match="serves release 2025_03, the dataset pins release 2024_01"
    ):
        fetch_one(http_server, tmp_path, {**source, "release": "2024_01"})


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("ena", "/fasta/AB000263.1,AB000264.1"),
        ("ncbi", "/efetch.fcgi?db=nuccore&id=AB000263.1%2CAB000264.1&rettype=fasta&retmode=text"),
    ],
)
def test_accessions_from_ena_and_ncbi(http_server, tmp_path, kind, path):
    http_server.add(path, FASTA)
    source = {
        "name": kind,
        "kind": kind,
        "accessions": ["AB000263.1", "AB000264.1"],
        "database": "nuccore",
        "sha256": SHA,
    }
    record = fetch_one(http_server, tmp_path, source)
    assert record["accessions"] == ["AB000263.1", "AB000264.1"]
    assert Path(record["path"]).read_bytes() == FASTA


def test_package_resource_records_the_package_version(tmp_path):
    source = {
        "name": "amp",
        "kind": "package",
        "package": "modlamp",
        "path": "data/AMPvsUniProt.csv",
    }
    record = fetch_source(source, tmp_path, Downloader(), {})
    assert record["version"] == importlib.metadata.version("modlamp")
    assert record["package"] == "modlamp" and record["size"] > 100_000
    with pytest.raises(FetchError, match="package 'no_such_pkg' is not installed"):
        fetch_source({**source, "package": "no_such_pkg"}, tmp_path, Downloader(), {})
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch_source({**source, "sha256": "1" * 64}, tmp_path, Downloader(), {})


def test_local_file_and_missing_local_file(tmp_path):
    path = tmp_path / "local.fa"
    path.write_bytes(FASTA)
    record = fetch_source(
        {"name": "loc", "kind": "local", "path": str(path), "sha256": SHA},
        tmp_path / "x",
        Downloader(),
        {},
    )
    assert record["sha256"] == SHA and record["pinned"]
    with pytest.raises(FetchError, match=r"local file '.*nope\.fa' does not exist"):
        fetch_source(
            {"name": "loc", "kind": "local", "path": str(tmp_path / "nope.fa")},
            tmp_path,
            Downloader(),
            {},
        )


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_tar_member_is_extracted(http_server, tmp_path):
    body = tar_bytes({"data/toy.fa": FASTA})
    url = http_server.add("/toy.tar.gz", body)
    source = {
        "name": "t",
        "kind": "url",
        "url": url,
        "sha256": hashlib.sha256(body).hexdigest(),
        "member": "data/toy.fa",
    }
    record = fetch_one(http_server, tmp_path, source)
    assert Path(record["path"]).read_bytes() == FASTA and record["member_sha256"] == SHA


def test_tar_with_parent_member_is_refused(http_server, tmp_path):
    body = tar_bytes({"../escape.fa": FASTA, "toy.fa": FASTA})
    url = http_server.add("/evil.tar.gz", body)
    source = {
        "name": "t",
        "kind": "url",
        "url": url,
        "sha256": hashlib.sha256(body).hexdigest(),
        "member": "toy.fa",
    }
    with pytest.raises(FetchError, match="refused to extract"):
        fetch_one(http_server, tmp_path, source)
    assert not list(tmp_path.rglob("escape.fa"))


def test_zip_with_parent_member_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("../../escape.fa", FASTA)
    with pytest.raises(FetchError, match="would be written outside"):
        extract_member(archive, "escape.fa", tmp_path / "out" / "extracted")
    assert not list(tmp_path.rglob("escape.fa"))
