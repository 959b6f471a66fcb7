"""Execution: each page's self-contained notebook (the download) runs once, on the CPU, in an empty folder, as it
would for a reader; the executed notebook is kept in a content-keyed cache (jupyter-cache: the key hashes the
notebook's code cells, so the code of the pages it inlines is part of it, its prose is not); outputs are cleaned
(no ANSI codes, no paths of this machine, no warnings, no stale widgets) before they are cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat
from mkdocs.exceptions import PluginError

from .notebook import INLINED_PREFIX, notebook
from .source import ROOT, rel, split_cells

CACHE = ROOT / ".cache" / "jupyter"
TIMEOUT = float(os.environ.get("PAGE_TIMEOUT", "120"))  # seconds one page may run, all its cells together
JOBS = int(os.environ.get("PAGE_JOBS", "2"))  # pages executed at once when the cache misses several
EXECUTOR = "2"  # part of each cached record: bump it when the way pages are executed changes

# Run before the page (and removed from the notebook afterwards): the notebook must not find this project
# (everything it needs is inlined), and each matplotlib figure shown gets an alt text in its output's metadata.
# `display` is wrapped before matplotlib's inline backend is imported, so the backend uses the wrapper.
SETUP = '''\
import importlib.util as _lb_util
import IPython.display as _lb_display

assert _lb_util.find_spec("labml_style_src") is None, "this notebook must run without the project installed"


def _lb_alt(fig):
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    if len(titles) > 4:
        titles = [f"{len(fig.axes)} panels: " + ", ".join(titles[:8]) + (", ..." if len(titles) > 8 else "")]
    axes = fig.axes[0] if fig.axes else None
    labels = f"{axes.get_ylabel()} against {axes.get_xlabel()}" if axes and axes.get_xlabel() else ""
    return next((t for t in (fig.get_label(), fig.get_suptitle(), "; ".join(titles), labels) if t), "")


def _lb_with_alt(*objs, display=_lb_display.display, metadata=None, **kwargs):
    if len(objs) == 1 and type(objs[0]).__module__ == "matplotlib.figure":
        metadata = {**(metadata or {}), "alt": _lb_alt(objs[0])}
    return display(*objs, metadata=metadata, **kwargs)


_lb_display.display = _lb_with_alt
'''


class PageError(PluginError):
    """A page failed while executed: `file: code cell N (line L): Error: message`."""


# --------------------------------------------------------------------------------------------------------------
# Executing a notebook
# --------------------------------------------------------------------------------------------------------------

def _where(nb, index: int, page: Path | str, error_line: int | None) -> str:
    """`file: code cell N (line L)` for the notebook cell at `index`; inlined cells name the page they come from.
    When `page` is not a source file (a label), N and L count in the notebook itself."""
    cell = nb.cells[index]
    if not (isinstance(page, Path) and page.is_file()):
        number = sum(c.cell_type == "code" and c.source != SETUP for c in nb.cells[: index + 1])
        return f"{page}: code cell {number} (line {error_line or 1})"
    if cell.source == SETUP:
        return f"{rel(page)}: before its first cell"
    first = cell.source.split("\n", 1)[0]
    if first.startswith(INLINED_PREFIX):
        return f"{rel(page)}: code inlined from {first[len(INLINED_PREFIX):].split(' (', 1)[0]}"
    code = [c for c in split_cells(page.read_text(encoding="utf-8"), page) if c.kind == "code"]
    later = [c for c in nb.cells[index:] if c.cell_type == "code"]  # this cell and the code cells after it
    number = len(code) - len(later) + 1  # the page's own code cells come last in the notebook
    lines = code[number - 1].lines
    start = code[number - 1].start + next((i for i, t in enumerate(lines) if t.strip()), 0)
    if error_line is not None:  # the cell's line, found in the source (an inlined import may shift lines)
        source = cell.source.splitlines() or [""]
        text = source[min(error_line, len(source)) - 1]
        found = [code[number - 1].start + i for i, t in enumerate(lines) if t == text and text.strip()]
        start = min(found, key=lambda n: abs(n - start - error_line + 1), default=start)
    return f"{rel(page)}: code cell {number} (line {start})"


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def execute(nb, page: Path | str, env: dict | None = None, standalone: bool = True, timeout: float = TIMEOUT,
            cwd: Path | None = None) -> float:
    """Run `nb` in place with a Jupyter kernel, in `cwd` (a new empty folder by default). Returns seconds.
    A cell that raises, or a page past its time budget, raises `PageError` naming the file (`page`: the source
    the notebook was made from, or a label for any other notebook), the cell and the line."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    if standalone:
        nb.cells.insert(0, nbformat.v4.new_code_cell(SETUP))
    start = time.monotonic()
    running = {"index": 0}
    # RESNET_ASSETS: the repository's committed results (docs/assets), which a page may read when it has them.
    kernel_env = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                  "RESNET_ASSETS": str(ROOT / "docs" / "assets"), **(env or {})}
    with tempfile.TemporaryDirectory(prefix="page-") as empty:
        run_dir = Path(cwd or empty)
        client = NotebookClient(
            nb, kernel_name="python3", allow_errors=False, record_timing=False,
            extra_arguments=["--IPKernelApp.log_level=ERROR"],  # not the kernel's notes on its transport
            resources={"metadata": {"path": str(run_dir)}},
            timeout_func=lambda cell: max(1, int(start + timeout - time.monotonic())),
            on_cell_start=lambda cell, cell_index: running.update(index=cell_index))
        try:
            client.execute(env=kernel_env)
        except CellTimeoutError:
            raise PageError(f"{_where(nb, running['index'], page, None)}: still running after the page's time "
                            f"budget of {timeout:g} s (set PAGE_TIMEOUT=<seconds> to change it)") from None
        except CellExecutionError as error:
            index = running["index"]
            trace = _strip_ansi("\n".join(error.traceback or "") if isinstance(error.traceback, list)
                                else str(error.traceback or ""))
            count = nb.cells[index].get("execution_count")
            match = (re.search(rf"Cell In\[{count}\], line (\d+)", trace)
                     or re.search(r"Cell In\[\d+\], line (\d+)", trace))
            where = _where(nb, index, page, int(match[1]) if match else None)
            raise PageError(f"{where}: {error.ename}: {_strip_ansi(error.evalue)}") from None
        if standalone:
            del nb.cells[0]
            for cell in nb.cells:
                if cell.cell_type == "code" and cell.execution_count:
                    cell.execution_count -= 1
                    for out in cell.outputs:
                        if "execution_count" in out:
                            out.execution_count = cell.execution_count
        clean(nb, run_dir)
    return time.monotonic() - start


# --------------------------------------------------------------------------------------------------------------
# Clean outputs: no ANSI codes, no paths of the building machine, no warning noise, carriage returns applied
# --------------------------------------------------------------------------------------------------------------

WIDGET = "application/vnd.jupyter.widget-view+json"
_WARNING = re.compile(r"^[^\n]*:\d+: \w*Warning: [^\n]*\n(?:[ \t]+[^\n]*\n)?", re.M)


def _machine_paths(run_dir: Path) -> list[tuple[str, str]]:
    places = [(run_dir, "."), (ROOT, "."), (sysconfig.get_paths()["purelib"], "<site-packages>"),
              (sysconfig.get_paths()["stdlib"], "<python>"), (sys.prefix, "<python>"),
              (tempfile.gettempdir(), "<tmp>"), (Path.home(), "~")]
    pairs = {(str(Path(p).resolve()), new) for p, new in places} | {(str(p), new) for p, new in places}
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def clean_text(text: str, paths: list[tuple[str, str]]) -> str:
    text = _strip_ansi(text)
    while re.search(r"[^\n]\x08", text):
        text = re.sub(r"[^\n]\x08", "", text)
    text = "\n".join(line.rsplit("\r", 1)[-1] if "\r" in line.rstrip("\r") else line.rstrip("\r")
                     for line in text.split("\n"))
    for old, new in paths:
        text = text.replace(old, new)
    return text


def clean(nb, run_dir: Path) -> None:
    """Clean every code cell's outputs in place."""
    paths = _machine_paths(run_dir)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if out.output_type == "stream":
                if merged and merged[-1].output_type == "stream" and merged[-1].name == out.name:
                    merged[-1].text += out.text  # adjacent pieces of one stream: one output
                    continue
                out.text = str(out.text)
            merged.append(out)
        kept = []
        for out in merged:
            if out.output_type == "stream":
                out.text = clean_text(out.text, paths)
                if out.name == "stderr":
                    out.text = _WARNING.sub("", out.text)
                if not out.text.strip():
                    continue
            elif WIDGET in out.get("data", {}):
                continue  # a widget's state is not saved with the notebook: its fallback text would be stale
            elif "data" in out:
                for mime in ("text/plain", "text/html", "image/svg+xml"):
                    if mime in out.data:
                        out.data[mime] = clean_text(str(out.data[mime]), paths)
            kept.append(out)
        cell.outputs = kept


# --------------------------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------------------------

def _fingerprint(nb) -> str:
    """What the cached record must still hold when it is read back: every code cell's outputs."""
    cells = [[c.get("execution_count"), c.get("outputs", [])] for c in nb.cells if c.cell_type == "code"]
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


def open_cache(path: Path = CACHE):
    """The jupyter-cache at `path`; an unreadable one is emptied and started again."""
    from jupyter_cache import get_cache

    cache = get_cache(path)
    try:
        cache.list_cache_records()
    except Exception:  # a damaged database: nothing in it can be trusted
        shutil.rmtree(path, ignore_errors=True)
        cache = get_cache(path)
    return cache


def cache_key(nb, cache_dir: Path = CACHE) -> str:
    """The key jupyter-cache files an executed notebook under: a hash of its code cells and kernel."""
    from jupyter_cache import get_cache

    return get_cache(cache_dir).create_hashed_notebook(nb)[1]


def lookup(cache, nb):
    """`nb` with the outputs of its cached execution, or None when there is none or the record is damaged."""
    try:
        record = cache.match_cache_notebook(nb)
    except KeyError:
        return None
    try:
        stored = cache.get_cache_bundle(record.pk).nb
        code = [c for c in nb.cells if c.cell_type == "code"]
        done = [c for c in stored.cells if c.cell_type == "code"]
        if (record.data.get("executor") != EXECUTOR or len(code) != len(done)
                or record.data.get("fingerprint") != _fingerprint(stored)):
            raise ValueError("cache record does not match its notebook")
    except Exception:
        try:
            cache.remove_cache(record.pk)
        except Exception:
            pass
        return None
    merged = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell, cached in zip([c for c in merged.cells if c.cell_type == "code"], done):
        cell.outputs, cell.execution_count = cached.outputs, cached.execution_count
    merged.metadata["language_info"] = stored.metadata.get("language_info", {"name": "python"})
    return merged


def store(cache, nb, page: Path, seconds: float) -> None:
    from jupyter_cache.base import CacheBundleIn

    data = {"executor": EXECUTOR, "fingerprint": _fingerprint(nb), "page": rel(page), "seconds": round(seconds, 1)}
    cache.cache_notebook_bundle(CacheBundleIn(nb, rel(page), data=data), check_validity=False, overwrite=True)


def executed(page: Path, cache_dir: Path = CACHE, timeout: float = TIMEOUT):
    """The page's downloadable notebook with its outputs: from the cache, or executed now and cached."""
    return executed_all([page], cache_dir, timeout, jobs=1)[page]


def executed_all(pages: list[Path], cache_dir: Path = CACHE, timeout: float = TIMEOUT, jobs: int = JOBS,
                 lang=None) -> dict:
    """{page: executed notebook}. Cache misses run `jobs` at a time; each result is cached as soon as it is done,
    so a page that fails does not cost the others their run next time. In another language (`lang`) the notebook
    differs in its markdown cells only; the cache is keyed by the code cells, so one execution serves every
    language."""
    cache = open_cache(cache_dir)
    out, todo = {}, {}
    for page in pages:
        nb = notebook(page, lang=lang)
        out[page] = lookup(cache, nb)
        if out[page] is None:
            todo[page] = nb
    if not todo:
        return out
    jobs = max(1, min(jobs, len(todo)))
    # As a reader's fresh notebook, on the CPU; no progress bars (a bar's last state is a timing, not a result).
    env = {"RESNET_DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": "", "TQDM_DISABLE": "1"}
    if jobs > 1 and "OMP_NUM_THREADS" not in os.environ:  # share the cores between the pages running at once
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    with ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(execute, nb, page, env, True, timeout): page for page, nb in todo.items()}
        try:
            for future in as_completed(futures):
                page = futures[future]
                seconds = future.result()
                store(cache, todo[page], page, seconds)
                out[page] = todo[page]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return out
