"""Shared set-up: the list of pages, the site build, and the runners that execute a page three ways."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
ARTIFACTS = ROOT / "test-artifacts"


# The renderer: the package beside the MkDocs hook (MkDocs puts hooks/ on sys.path while loading the hook).
sys.path.insert(0, str(ROOT / "hooks"))
from site_render import notebook, pages, source  # noqa: E402

PAGES = [page for _, chapter in pages.discover() for page in chapter]


@pytest.fixture(scope="session")
def built_site(tmp_path_factory):
    """`mkdocs build --strict` once per session; returns the site folder and the build time."""
    site = tmp_path_factory.mktemp("site")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "build_seconds.txt").write_text(f"{seconds:.1f}\n")
    return site, seconds


class PageError(AssertionError):
    """A page failed to run; the message names the file and the cell."""


def run_notebook(notebook, cwd: Path, env: dict, label: str) -> float:
    """Execute a notebook with nbclient in `cwd`; returns seconds. On error: which file, which cell, what."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    start = time.perf_counter()
    try:
        client.execute(env={**os.environ, **env})
    except CellExecutionError as error:
        cells = [c for c in notebook.cells if c.cell_type == "code"]
        failed = next((i for i, c in enumerate(cells)
                       if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        where = "unknown cell"
        if failed is not None:
            first = next((l for l in cells[failed].source.splitlines() if l.strip()), "")
            where = f"code cell {failed + 1} (starting {first.strip()!r})"
        raise PageError(f"{label}: {where} raised {error.ename}: {error.evalue}") from None
    return time.perf_counter() - start


def jupytext_notebook(text: str):
    import jupytext

    notebook = jupytext.reads(text, fmt=source.JUPYTEXT)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


TIMINGS: dict[str, float] = {}


def pytest_sessionfinish(session, exitstatus):
    if TIMINGS:
        ARTIFACTS.mkdir(exist_ok=True)
        lines = [f"{seconds:7.1f}s  {name}" for name, seconds in sorted(TIMINGS.items())]
        (ARTIFACTS / "page_timings.txt").write_text("\n".join(lines) + "\n")
