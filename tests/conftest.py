"""Shared set-up: the renderer's modules, the list of pages, the site build."""

import functools
import http.server
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
# `make test` runs the suite in two processes (pytest-xdist): each gets one core's worth of threads, and so do the
# kernels, builds and torchrun jobs it starts.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
# The built sites are session fixtures: the tests that use them, and the download runs (whose cache the build
# fills), all go to one process, so the sites are built once (`pytest_xdist_make_scheduler` below).
SITE_TESTS = ("tests/test_site.py::", "tests/test_languages.py::",
              "tests/test_pages.py::test_downloaded_notebook_is_self_contained")


def pytest_xdist_make_scheduler(config, log):
    """xdist's own grouping (`xdist_group` with `--dist loadgroup`) renames node ids, which pytest 9 ignores; this
    scheduler puts every test of SITE_TESTS in one unit of work and balances the rest one test at a time."""
    from xdist.scheduler import LoadScopeScheduling

    class SiteInOneProcess(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "site" if nodeid.startswith(SITE_TESTS) else nodeid

    return SiteInOneProcess(config, log)
ARTIFACTS = ROOT / "test-artifacts"


# The renderer: the package beside the MkDocs hook (MkDocs puts hooks/ on sys.path while loading the hook).
sys.path.insert(0, str(ROOT / "hooks"))
from site_render import execute, notebook, pages, source  # noqa: E402

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


SERVED: list[tuple[str, int]] = []  # (path, bytes sent, headers included): every request the sites' server answered


class _Counting:
    """A response stream that counts the bytes written to it."""

    def __init__(self, stream):
        self.stream, self.count = stream, 0

    def write(self, data):
        self.count += len(data)
        return self.stream.write(data)

    def __getattr__(self, name):
        return getattr(self.stream, name)


@pytest.fixture(scope="session")
def language_sites(built_site, tmp_path_factory):
    """English (the session's build) at /en/, ja and zh built strictly (both at once) at /ja/ and /zh/, served
    together on 127.0.0.1 (the port is chosen first: each sitemap, which the switcher reads, names it)."""
    root = tmp_path_factory.mktemp("sites")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def setup(self):  # count what is sent (the page weight test reads SERVED)
            super().setup()
            self.wfile = _Counting(self.wfile)

        def finish(self):
            SERVED.append((getattr(self, "path", "?"), self.wfile.count))
            super().finish()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    (root / "en").symlink_to(built_site[0])
    start = time.perf_counter()
    builds = {code: subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", f"mkdocs.{code}.yml", "-d", str(root / code)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, f"SITE_URL_{code.upper()}": f"{origin}/{code}/"}) for code in ("ja", "zh")}
    for code, process in builds.items():
        output = process.communicate()[0]
        assert process.returncode == 0, f"mkdocs build --strict -f mkdocs.{code}.yml failed:\n{output}"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "build_seconds_ja_zh.txt").write_text(f"{time.perf_counter() - start:.1f}\n")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, origin
    httpd.shutdown()


CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync", "--disable-quic"]


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium through Playwright (the English and the ja/zh browser tests share it)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (run `make test`, which installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def isolated_rng():
    """Every test starts from the same seeded random state and leaves the global state as it found
    it: Python's `random`, NumPy's global generator and torch (CPU, and CUDA when present). So no
    test depends on what ran before it, and a page run in-process (`runpy`) cannot change what the
    next test draws."""
    cuda = torch.cuda.is_available()
    saved = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
             torch.cuda.get_rng_state_all() if cuda else None)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)  # seeds CUDA too
    yield
    random.setstate(saved[0])
    np.random.set_state(saved[1])
    torch.set_rng_state(saved[2])
    if cuda:
        torch.cuda.set_rng_state_all(saved[3])


def jupytext_notebook(text: str):
    """A page's own notebook (what Jupyter shows when it opens the source), ready to run."""
    import jupytext

    return notebook.with_kernel(jupytext.reads(text, fmt=source.JUPYTEXT))


def run_notebook(nb, cwd: Path, env: dict, label: str | Path) -> float:
    """Run a notebook in `cwd` with the build's runner (site_render.execute); returns seconds. A cell that raises
    fails with `label: code cell N (line L): Error: message` (`label` a page's source path: its own numbering)."""
    return execute.execute(nb, label, env, standalone=False, timeout=900, cwd=cwd)


def assert_hint_keeps_answer(info, *right: str) -> None:
    """A checker rejected a wrong answer (`info` from `pytest.raises`) with a hint, not the solution: its message
    is not empty and contains none of the strings in `right`."""
    message = str(info.value)
    assert message and not [r for r in right if r in message], message


TIMINGS: dict[str, float] = {}


def pytest_sessionfinish(session, exitstatus):
    if TIMINGS:
        ARTIFACTS.mkdir(exist_ok=True)
        lines = [f"{seconds:7.1f}s  {name}" for name, seconds in sorted(TIMINGS.items())]
        worker = os.environ.get("PYTEST_XDIST_WORKER")  # one file per process under `make test`
        (ARTIFACTS / f"page_timings{'-' + worker if worker else ''}.txt").write_text("\n".join(lines) + "\n")
