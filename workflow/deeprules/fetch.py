"""Fetch every declared source with a verified checksum and a provenance record (Tip 4).

"Information about the resources used, download dates, and dataset versions are
critical to preserve": each source ends up as a local file whose sha256 is
checked against the dataset file's pin, and provenance.json says where it came
from, when, and which release of the database it was.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import importlib.resources
import json
import logging
import os
import platform
import shutil
import subprocess
import tarfile
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

from deeprules import __version__
from deeprules.io import InputError, sha256_of, write_json
from deeprules.rule import Job

log = logging.getLogger("deeprules.fetch")

REMOTE_KINDS = {"url", "zenodo", "uniprot", "ena", "ncbi"}
# What a remote source or endpoint may be: urllib also opens file:// and data: URLs,
# which would read the local disk under a remote source's name (local files: kind local).
REMOTE_SCHEMES = ("http://", "https://", "ftp://")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}
RESPONSE_HEADERS = {
    "etag": "ETag",
    "last_modified": "Last-Modified",
    "uniprot_release": "X-UniProt-Release",
    "uniprot_release_date": "X-UniProt-Release-Date",
}


class FetchError(InputError):
    """A source could not be fetched or did not match its pin."""


class TransientError(Exception):
    """A failure worth retrying: 5xx, timeout, reset, or a body cut short."""


@dataclass
class Downloader:
    """HTTP(S)/FTP downloads with retries, resume and atomic placement."""

    retries: int = 5
    backoff_seconds: float = 2.0
    timeout_seconds: float = 60.0
    user_agent: str = f"deeprules/{__version__} (+https://github.com/deeprules)"

    def fetch(self, url: str, dest: Path) -> dict[str, str]:
        """Download `url` to `dest`; return the response headers worth recording.

        A partial file survives a transient error as `<dest>.part` and the next
        attempt asks only for the missing bytes when the server accepts ranges.
        """
        if not url.lower().startswith(REMOTE_SCHEMES):
            raise FetchError(
                f"{url}: only http, https and ftp addresses are fetched; a file on this "
                "machine is a source of kind local (path: ...)"
            )
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(self.retries + 1):
            try:
                headers = self._attempt(url, part)
                os.replace(part, dest)
                return headers
            except TransientError as error:
                if attempt == self.retries:
                    part.unlink(missing_ok=True)
                    raise FetchError(
                        f"{url}: giving up after {self.retries + 1} attempts: {error}. "
                        "Check the address or raise fetch.retries in config/config.yaml."
                    ) from None
                wait = self.backoff_seconds * 2**attempt
                log.warning(
                    "%s: %s; retry %d/%d in %.1f s", url, error, attempt + 1, self.retries, wait
                )
                time.sleep(wait)
        raise AssertionError("unreachable")

    def get_json(self, url: str, dest: Path) -> dict[str, Any]:
        """Fetch a small JSON document (an API response) through the same retry path."""
        self.fetch(url, dest)
        try:
            return json.loads(dest.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise FetchError(f"{url}: expected JSON, got something else ({error})") from None

    def _attempt(self, url: str, part: Path) -> dict[str, str]:
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": self.user_agent}
        if have and not url.startswith("ftp://"):
            headers["Range"] = f"bytes={have}-"
        try:
            with urlopen(Request(url, headers=headers), timeout=self.timeout_seconds) as response:
                resumed = have > 0 and getattr(response, "status", 200) == 206
                expected = _expected_total(response, have if resumed else 0)
                with open(part, "ab" if resumed else "wb") as handle:
                    shutil.copyfileobj(response, handle, 1 << 20)
                got = part.stat().st_size
                if expected is not None and got < expected:
                    raise TransientError(f"body cut short ({got} of {expected} bytes)")
                return {
                    key: response.headers[name]
                    for key, name in RESPONSE_HEADERS.items()
                    if response.headers.get(name)
                }
        except HTTPError as error:
            if error.code == 416:  # our partial file is stale: start again
                part.unlink(missing_ok=True)
                raise TransientError("server refused the resume range") from None
            if error.code in TRANSIENT_HTTP:
                raise TransientError(f"HTTP {error.code} {error.reason}") from None
            part.unlink(missing_ok=True)
            raise FetchError(
                f"{url}: HTTP {error.code} {error.reason}; check the address"
            ) from None
        except (URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            if isinstance(error, URLError) and not isinstance(reason, (OSError, TimeoutError)):
                raise FetchError(f"{url}: {reason}") from None
            raise TransientError(f"{type(reason).__name__}: {reason}") from None


def _expected_total(response: Any, already: int) -> int | None:
    """Bytes the finished file must have, from Content-Length, if the server said."""
    length = response.headers.get("Content-Length")
    return already + int(length) if length and length.isdigit() else None


def run(job: Job) -> None:
    """Rule fetch: every source into the `files` folder, and provenance.json."""
    fetch_dataset(
        job.dataset,
        job.settings["fetch"],
        job.outputs["files"],
        job.outputs["provenance"],
        job.settings.get("label_table"),  # set only for labels.from: table
    )


def fetch_dataset(
    dataset: dict[str, Any],
    fetch_config: dict[str, Any],
    outdir: Path,
    provenance: Path,
    label_table: str | None = None,
) -> dict[str, Any]:
    """Fetch all sources of a dataset into `outdir` and write provenance.json.

    Local files (sources of kind local, the labels side table) are read where they
    are; their SHA-256 is recorded so that curate can refuse a file changed since.
    """
    downloader = Downloader(
        retries=fetch_config["retries"],
        backoff_seconds=fetch_config["backoff_seconds"],
        timeout_seconds=fetch_config["timeout_seconds"],
    )
    endpoints = fetch_config["endpoints"]
    outdir.mkdir(parents=True, exist_ok=True)
    records = []
    for source in dataset["sources"]:
        _refuse_unpinned(source, dataset)
        log.info("fetching source '%s' (%s)", source["name"], source["kind"])
        record = fetch_source(source, outdir / source["name"], downloader, endpoints)
        record["role"] = source["role"]  # unlabeled: pre-training only (curate keeps it apart)
        records.append(record)
        log.info("  %s  %s  %d bytes", record["sha256"], record["path"], record["size"])
    summary = {
        "dataset": dataset["name"],
        "sources": records,
        **({"label_table": _label_table(Path(label_table))} if label_table else {}),
        "allow_unpinned": dataset["allow_unpinned"],
        "tools": tool_versions(),
        "workflow": {"version": __version__, "git_commit": git_commit()},
    }
    write_json(provenance, summary)
    return summary


def _label_table(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FetchError(f"labels.table: file '{path}' does not exist")
    return {"path": str(path), "local_path": str(path.resolve()), "sha256": sha256_of(path)}


def _refuse_unpinned(source: dict[str, Any], dataset: dict[str, Any]) -> None:
    if source["kind"] in REMOTE_KINDS and "sha256" not in source and not dataset["allow_unpinned"]:
        raise FetchError(
            f"dataset '{dataset['name']}', source '{source['name']}': remote source without "
            "'sha256'. Add the file's sha256 to the source (recommended) or set "
            "'allow_unpinned: true' in the dataset file to accept whatever the server sends."
        )


def fetch_source(
    source: dict[str, Any], folder: Path, downloader: Downloader, endpoints: dict[str, str]
) -> dict[str, Any]:
    """Fetch one source; return its provenance record (path is the file to read)."""
    kind = source["kind"]
    record: dict[str, Any] = {"name": source["name"], "kind": kind}
    if kind == "url":
        path, details = _fetch_url(source["url"], folder, downloader)
    elif kind == "zenodo":
        path, details = _fetch_zenodo(source, folder, downloader, endpoints["zenodo"])
    elif kind == "uniprot":
        path, details = _fetch_uniprot(source, folder, downloader, endpoints["uniprot"])
    elif kind in ("ena", "ncbi"):
        path, details = _fetch_accessions(source, folder, downloader, endpoints[kind])
    elif kind == "package":
        path, details = _package_file(source)
    else:
        path, details = _local_file(source)
    record.update(details)
    record["retrieved_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    record["sha256"] = _verified_sha256(path, source)
    record["size"] = path.stat().st_size
    record["pinned"] = "sha256" in source
    if "member" in source:
        record["archive"] = str(path)
        path = extract_member(path, source["member"], folder / "extracted")
        record["member"] = source["member"]
        record["member_sha256"] = sha256_of(path)
    record["path"] = str(path)
    return record


def _verified_sha256(path: Path, source: dict[str, Any]) -> str:
    digest = sha256_of(path)
    expected = source.get("sha256")
    if expected and digest != expected:
        if source["kind"] in REMOTE_KINDS:
            path.unlink(missing_ok=True)
        raise FetchError(
            f"source '{source['name']}': sha256 mismatch for {path.name}\n"
            f"  expected (dataset file): {expected}\n"
            f"  received:                {digest}\n"
            "The file changed upstream or the pin is wrong; check the source, then update "
            "'sha256' in the dataset file."
        )
    return digest


def _fetch_url(url: str, folder: Path, downloader: Downloader) -> tuple[Path, dict[str, Any]]:
    name = Path(url.split("?", 1)[0].rstrip("/")).name or "download"
    path = folder / name
    headers = downloader.fetch(url, path)
    return path, {"url": url, **headers}


def _fetch_zenodo(
    source: dict[str, Any], folder: Path, downloader: Downloader, base: str
) -> tuple[Path, dict[str, Any]]:
    """A Zenodo record id pins one version of a deposit; its API lists the files."""
    api = f"{base.rstrip('/')}/api/records/{source['record']}"
    meta = downloader.get_json(api, folder / ".zenodo_record.json")
    files = {entry.get("key"): entry for entry in meta.get("files", [])}
    if source["file"] not in files:
        raise FetchError(
            f"source '{source['name']}': Zenodo record {source['record']} has no file "
            f"'{source['file']}'; its files are: {', '.join(sorted(map(str, files)))}"
        )
    entry = files[source["file"]]
    url = entry.get("links", {}).get("self") or (
        f"{base.rstrip('/')}/records/{source['record']}/files/{quote(source['file'])}?download=1"
    )
    if not url.lower().startswith(REMOTE_SCHEMES):
        raise FetchError(
            f"source '{source['name']}': Zenodo record {source['record']} gives '{url}' as the "
            f"address of '{source['file']}'; only http, https or ftp addresses are fetched. "
            "Check fetch.endpoints.zenodo (a mirror?)."
        )
    path = folder / source["file"]
    headers = downloader.fetch(url, path)
    (folder / ".zenodo_record.json").unlink()
    details = {
        "url": url,
        "zenodo_record": source["record"],
        "doi": meta.get("doi"),
        "version": meta.get("metadata", {}).get("version"),
        "publication_date": meta.get("metadata", {}).get("publication_date"),
        "zenodo_checksum": entry.get("checksum"),
        **headers,
    }
    return path, {k: v for k, v in details.items() if v is not None}


def _fetch_uniprot(
    source: dict[str, Any], folder: Path, downloader: Downloader, base: str
) -> tuple[Path, dict[str, Any]]:
    """UniProt answers a query with the current release, named in its response headers."""
    query = urlencode({"query": source["query"], "format": "fasta"})
    url = f"{base.rstrip('/')}/uniprotkb/stream?{query}"
    path = folder / "uniprot.fasta"
    headers = downloader.fetch(url, path)
    release = headers.get("uniprot_release")
    if source.get("release") and release != source["release"]:
        path.unlink(missing_ok=True)
        raise FetchError(
            f"source '{source['name']}': UniProt now serves release {release or 'unknown'}, "
            f"the dataset pins release {source['release']}. Update 'release' (and 'sha256') in "
            "the dataset file after checking what changed."
        )
    return path, {"url": url, "query": source["query"], **headers}


def _fetch_accessions(
    source: dict[str, Any], folder: Path, downloader: Downloader, base: str
) -> tuple[Path, dict[str, Any]]:
    """ENA browser API or NCBI E-utilities efetch, both returning FASTA for a list of ids."""
    ids = ",".join(source["accessions"])
    if source["kind"] == "ena":
        url = f"{base.rstrip('/')}/fasta/{ids}"
    else:
        params = urlencode(
            {"db": source["database"], "id": ids, "rettype": "fasta", "retmode": "text"}
        )
        url = f"{base.rstrip('/')}/efetch.fcgi?{params}"
    path = folder / f"{source['kind']}.fasta"
    headers = downloader.fetch(url, path)
    return path, {"url": url, "accessions": source["accessions"], **headers}


def _package_file(source: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """A file shipped inside an installed Python package, pinned by package version."""
    package = source["package"]
    try:
        resource = importlib.resources.files(package).joinpath(source["path"])
    except ModuleNotFoundError:
        raise FetchError(
            f"source '{source['name']}': Python package '{package}' is not installed "
            f"(install it, e.g. 'pip install {package}')"
        ) from None
    path = Path(str(resource))
    if not path.is_file():
        raise FetchError(
            f"source '{source['name']}': package '{package}' has no file '{source['path']}'"
        )
    distribution = importlib.metadata.packages_distributions().get(package, [package])[0]
    version = importlib.metadata.version(distribution)
    return path, {"package": package, "distribution": distribution, "version": version}


def _local_file(source: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    path = Path(source["path"])
    if not path.is_file():
        raise FetchError(f"source '{source['name']}': local file '{path}' does not exist")
    return path, {"local_path": str(path.resolve())}


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract_member(archive: Path, member: str, target: Path) -> Path:
    """Extract one archive into `target`, refusing any member that would land outside it."""
    if not is_archive(archive):
        raise FetchError(f"{archive.name}: 'member' is set but this is not a tar or zip archive")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    try:
        if archive.name.lower().endswith(".zip"):
            _extract_zip(archive, target)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
    except (tarfile.FilterError, FetchError) as error:
        shutil.rmtree(target)
        raise FetchError(f"{archive.name}: refused to extract: {error}") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as error:
        shutil.rmtree(target)
        raise FetchError(f"{archive.name}: damaged archive: {error}") from None
    path = target / member
    if not path.resolve().is_relative_to(target.resolve()):
        shutil.rmtree(target)
        raise FetchError(
            f"{archive.name}: member '{member}' points outside the archive; give the path of "
            "a file inside it (as 'tar -tf' or 'unzip -l' lists it)"
        )
    if not path.is_file():
        raise FetchError(f"{archive.name}: has no member '{member}'")
    return path


def _extract_zip(archive: Path, target: Path) -> None:
    """zipfile silently rewrites '../' names; refuse them instead, as tarfile's data filter does."""
    root = target.resolve()
    with zipfile.ZipFile(archive) as zipped:
        for name in zipped.namelist():
            if not (root / name).resolve().is_relative_to(root):
                raise FetchError(f"member '{name}' would be written outside {target}")
        zipped.extractall(target)


def tool_versions() -> dict[str, str]:
    """Versions of the interpreter and the libraries the workflow depends on."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("snakemake", "pandas", "numpy", "scikit-learn", "biopython"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    return versions


def git_commit() -> str | None:
    """The workflow's git commit, so a report can be traced to the code that made it."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()
