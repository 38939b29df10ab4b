"""Shared test fixtures: a real HTTP server on 127.0.0.1 and a way to run the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


@dataclass
class Route:
    """What the server answers on one path.

    `statuses` are served first, one per request (e.g. [500] then the body);
    `cut_first` sends only half the body on the first full response while
    announcing the whole length, as a dropped connection does.
    """

    body: bytes
    statuses: list[int] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    cut_first: bool = False
    served_cut: bool = False


class FileServer:
    """A real HTTP server with ranges, scripted failures and a request log."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route.statuses:
                    self.send_error(route.statuses.pop(0))
                    return
                body, start = route.body, 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Accept-Ranges", "bytes")
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if route.cut_first and not route.served_cut and start == 0:
                    route.served_cut = True
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def add(self, path: str, body: bytes, **options: object) -> str:
        self.routes[path] = Route(body, **options)
        return self.url + path

    def paths_requested(self) -> list[str]:
        return [path for path, _ in self.requests]


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    server = FileServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the tiny end-to-end run is slow, whether or not it says so."""
    for item in items:
        if "tiny_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A folder kept after the run (test-artifacts/<test>/, ignored by git) for what a
    person should look at afterwards, e.g. screenshots of the report."""
    folder = REPO / "test-artifacts" / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_workflow(
    workdir: Path, *args: str, check: bool = True, timeout: int = 1500
) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in `workdir` with its config/config.yaml."""
    command = [
        SNAKEMAKE,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config" / "config.yaml"),
        "--cores",
        "2",
        *args,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
    return result


def make_tiny_project(workdir: Path, server: FileServer) -> Path:
    """A working directory with a tiny planted-motif DNA dataset served over HTTP."""
    import gzip
    import hashlib

    from planted import as_fasta, planted_table

    positives = as_fasta(planted_table(100, 1, {"bound": "TGACTCAGCA"}, prefix="pos")).encode()
    negatives = gzip.compress(
        as_fasta(planted_table(100, 2, {"background": None}, prefix="neg")).encode(), mtime=0
    )
    sources = []
    for name, body, label in (
        ("bound", positives, "bound"),
        ("background", negatives, "background"),
    ):
        suffix = ".fa.gz" if body[:2] == b"\x1f\x8b" else ".fa"
        url = server.add(f"/data/{name}{suffix}", body)
        sha = hashlib.sha256(body).hexdigest()
        sources.append({"name": name, "kind": "url", "url": url, "sha256": sha, "label": label})
    write_yaml(
        workdir / "config/datasets/tiny.yaml",
        {
            "sequence_type": "dna",
            "positive_class": "bound",
            "sources": sources,
            "labels": {"from": "source"},
            "ethics": [{"concern": "Synthetic sequences only.", "status": "not_applicable"}],
        },
    )
    write_yaml(
        workdir / "config/config.yaml", {"datasets": ["tiny"], "seed": 7, "budget": {"trials": 2}}
    )
    return workdir


@pytest.fixture
def tiny_project(tmp_path: Path, http_server: FileServer) -> Path:
    return make_tiny_project(tmp_path, http_server)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Iterator[tuple[Path, FileServer]]:
    """The whole workflow run once on the tiny dataset, shared by the tests that read it."""
    server = FileServer()
    server.thread.start()
    workdir = make_tiny_project(tmp_path_factory.mktemp("tiny"), server)
    run_workflow(workdir)
    yield workdir, server
    server.httpd.shutdown()
    server.httpd.server_close()
