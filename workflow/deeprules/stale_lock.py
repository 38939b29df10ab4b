"""Before `make run`: remove the lock a killed Snakemake left behind, but only when no
Snakemake process is still working in this folder.

Snakemake locks the working directory (.snakemake/locks/) while it runs and
removes the lock when it ends. A run killed with `kill -9`, an out-of-memory
kill or a closed laptop lid leaves the lock, and the next run stops with
"Directory cannot be locked" until the user finds `--unlock`. The profile's
`rerun-incomplete` already redoes the jobs that were cut short, and the CNN
tuner resumes its search, so the lock is the only thing between a crash and
"run the same command again". Removing a lock that a live run holds would let
two runs write the same files, so it is removed only when no process whose
command line mentions Snakemake runs in this folder (its jobs included: their
scripts live in .snakemake/scripts/).

    python -m deeprules.stale_lock [working directory]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# What the command line of a process that may write into the folder contains: Snakemake
# and its jobs (.snakemake/scripts/...), and the CNN's tuner processes, which outlive a
# killed parent.
MARKERS = ("snakemake", "deeprules.cnn")


def snakemake_processes(workdir: Path) -> list[tuple[int, str]]:
    """(pid, command line) of live processes that may hold `workdir`'s lock.

    On Linux: processes mentioning snakemake whose working directory is `workdir`
    or whose command line names it. Elsewhere the working directory of another
    process is not readable, so every process mentioning snakemake counts.
    """
    workdir = workdir.resolve()
    proc = Path("/proc")
    if not proc.is_dir():
        return _any_snakemake_process()
    found = []
    for entry in proc.glob("[0-9]*"):
        if int(entry.name) in (os.getpid(), os.getppid()):
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = Path(os.readlink(entry / "cwd"))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or another user's process
        here = cwd == workdir or str(workdir) in command
        if here and state != "Z" and _may_write(command):
            found.append((int(entry.name), command))
    return found


def _may_write(command: str) -> bool:
    return any(marker in command for marker in MARKERS) and "deeprules.stale_lock" not in command


def _any_snakemake_process() -> list[tuple[int, str]]:
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,command="], capture_output=True, text=True, check=False
    ).stdout
    found = []
    for line in listing.splitlines():
        pid, _, command = line.strip().partition(" ")
        if _may_write(command) and pid.isdigit() and int(pid) not in (os.getpid(), os.getppid()):
            found.append((int(pid), command.strip()))
    return found


def remove_stale_lock(workdir: Path) -> str:
    """Remove `workdir`'s Snakemake lock if no Snakemake process holds it; say what was done
    ('' when there was no lock)."""
    locks = sorted((workdir / ".snakemake" / "locks").glob("*.lock"))
    if not locks:
        return ""
    holders = snakemake_processes(workdir)
    if holders:
        listed = "; ".join(f"pid {pid}: {command[:80]}" for pid, command in holders[:3])
        return (
            f"deeprules: kept the Snakemake lock in {workdir / '.snakemake/locks'}: a Snakemake "
            f"process is still running in this folder ({listed}). Wait for it to finish, or "
            "stop it first."
        )
    for lock in locks:
        lock.unlink(missing_ok=True)
    return (
        f"deeprules: removed a stale Snakemake lock ({len(locks)} file(s) in "
        f"{workdir / '.snakemake/locks'}) left by a run that was killed; no Snakemake process "
        "is running in this folder. The run continues where it stopped: jobs cut short are "
        "redone (rerun-incomplete), finished ones are kept."
    )


def main(argv: list[str]) -> int:
    message = remove_stale_lock(Path(argv[0]) if argv else Path.cwd())
    if message:
        print(message, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
