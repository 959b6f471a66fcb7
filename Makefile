# Two commands: `make serve` (build and serve the site) and `make test` (the whole suite). Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.installed
export NO_MKDOCS_2_WARNING := 1

.PHONY: serve build lint test browser graphviz bench bench-train warmup ablation assignments grade clean

$(READY): requirements.txt requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -c requirements.lock
	touch $@

serve: $(READY) graphviz  ## build and serve the site at http://127.0.0.1:8000, rebuilding on edits
	$(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8000

build: $(READY) graphviz  ## build the static site into site/; runs the pages whose code changed (PAGE_JOBS=2, PAGE_TIMEOUT=120 s)
	$(BIN)/mkdocs build --strict

# The browser test uses Debian's chromium (never a downloaded browser). Installed when missing and we are root.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and cannot be installed here: the browser tests will be skipped (they fail under CI=true)"; fi; }

# Diagrams are drawn at build time by Graphviz's `dot` (Debian's graphviz). Installed when missing and we are root.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else echo "graphviz (dot) is missing and cannot be installed here: pages print a line instead of each diagram"; fi; }

lint: $(READY)  ## ruff (pyflakes, pycodestyle, bugbear, isort); configured in pyproject.toml
	$(BIN)/ruff check .

test: $(READY) lint browser graphviz  ## lint, then every page run three ways, fidelity tests, the strict build and the browser check
	$(BIN)/python -m pytest

bench: $(READY)  ## one training step of our ResNet-50 vs torchvision's, interleaved
	$(BIN)/python scripts/bench_resnet50.py --steps 2 --rounds 4

bench-train: $(READY)  ## the fast path's batches vs a plain DataLoader: CPU time of one core (a few minutes)
	$(BIN)/python scripts/bench_training.py --device cpu --clock cpu --threads 1 --workers 0 \
	  --n-images 10000 --steps 4 --warmup 1 --rounds 3 --json docs/assets/training/bench_cpu.json

warmup: $(READY)  ## the warm-up measurement the recipe page shows (~6 min of one CPU core)
	$(BIN)/python scripts/measure_warmup.py

ablation: $(READY)  ## the plain-vs-residual experiment whose results the ablation page shows (~75 s on 2 cores)
	$(BIN)/python scripts/run_ablation.py

assignments: $(READY)  ## an nbgrader course source/ folder, one assignment per page, in build/course
	$(BIN)/python scripts/course.py assignments --course build/course

grade: $(READY)  ## autograde SUBMISSIONS=<folder> (<student>/<assignment>/<page>.ipynb) into build/course/grades.csv
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder of <student>/<assignment>/<page>.ipynb>"; exit 2; }
	$(BIN)/python scripts/course.py grade "$(SUBMISSIONS)" --course build/course

clean:  ## the built site, the executed-page cache (.cache: jupyter, views, mkdocs-jupyter), test artifacts
	rm -rf site .cache test-artifacts .pytest_cache
