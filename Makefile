# Two commands: `make serve` (build and serve the site) and `make test` (the whole suite). Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.installed
export NO_MKDOCS_2_WARNING := 1

# Languages beside English: one build each (mkdocs.<code>.yml inherits mkdocs.yml).
LANGUAGES := ja zh
# `make serve SERVE_LANG=ja` (or zh) serves that language with live reload.
SERVE_LANG ?= en

.PHONY: serve build preview lint test browser graphviz bench bench-train warmup bench-ddp ddp-demo ablation assignments grade clean translations

# pip compiles the installed files on one core; compileall -j 0 does it on all of them (fresh venv, 2 cores: 88 + 31 s
# instead of 146 s). Its exit status is ignored: torch ships a file in Python 3.12 syntax, which pip skips too.
$(READY): requirements.txt requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt -c requirements.lock
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1 || true
	touch $@

serve: $(READY) graphviz  ## serve one language with live reload: http://127.0.0.1:8000/en/ (SERVE_LANG=ja or zh for the others)
	$(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8000 $(if $(filter-out en,$(SERVE_LANG)),-f mkdocs.$(SERVE_LANG).yml)

build: $(READY) graphviz  ## every language into site/en, site/ja, site/zh (+ site/index.html -> en/); runs the pages whose code changed (PAGE_JOBS=2, PAGE_TIMEOUT=120 s)
	$(BIN)/mkdocs build --strict
	for code in $(LANGUAGES); do $(BIN)/mkdocs build --strict -f mkdocs.$$code.yml || exit 1; done
	cp translations/root-index.html site/index.html

preview: build  ## every language together, as deployed (no live reload): http://127.0.0.1:8000/
	$(BIN)/python -m http.server 8000 --bind 127.0.0.1 --directory site

translations: $(READY)  ## add entries for new/changed English blocks to translations/, then list what is left to translate
	$(BIN)/python scripts/translations.py sync
	-$(BIN)/python scripts/translations.py check

# The browser test uses Debian's chromium (never a downloaded browser) and Debian's Noto CJK fonts (the ja and zh
# pages use system fonts). Installed when missing and we are root.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and cannot be installed here: the browser tests will be skipped (they fail under CI=true)"; fi; }
	@dpkg -s fonts-noto-cjk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; \
	  else echo "fonts-noto-cjk is missing and cannot be installed here: the ja/zh browser tests will fail"; fi; }

# Diagrams are drawn at build time by Graphviz's `dot` (Debian's graphviz). Installed when missing and we are root.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null; \
	  else echo "graphviz (dot) is missing and cannot be installed here: pages print a line instead of each diagram"; fi; }

lint: $(READY)  ## ruff (pyflakes, pycodestyle, bugbear, isort); configured in pyproject.toml
	$(BIN)/ruff check .

# The suite runs in TEST_JOBS processes (pytest-xdist); the tests that use the built sites share one (conftest.py).
TEST_JOBS ?= 2
test: $(READY) lint browser graphviz  ## lint, then every page run three ways, fidelity tests, the strict build and the browser check
	$(BIN)/python -m pytest -n $(TEST_JOBS) --durations 25

bench: $(READY)  ## one training step of our ResNet-50 vs torchvision's, interleaved
	$(BIN)/python scripts/bench_resnet50.py --steps 2 --rounds 4

bench-train: $(READY)  ## the fast path's batches vs a plain DataLoader: CPU time of one core (a few minutes)
	$(BIN)/python scripts/bench_training.py --device cpu --clock cpu --threads 1 --workers 0 \
	  --n-images 10000 --steps 4 --warmup 1 --rounds 3 --json docs/assets/training/bench_cpu.json

warmup: $(READY)  ## the warm-up measurement the recipe page shows (~6 min of one CPU core)
	$(BIN)/python scripts/measure_warmup.py

# Data-parallel training on the CPU: 2 processes (gloo) started by torchrun, a small ResNet, generated
# ImageNet-format JPEGs. Progress bar from rank 0 only. Starts afresh each time.
ddp-demo: $(READY)  ## 2-process DDP training of a small ResNet on generated ImageNet-format data (CPU)
	$(BIN)/python scripts/train_ddp.py --write-demo-data data/patterns-imagenet-demo --demo-images 256
	rm -rf runs/ddp-demo
	OMP_NUM_THREADS=1 $(BIN)/torchrun --standalone --nproc_per_node 2 scripts/train_ddp.py \
	  --data data/patterns-imagenet-demo --run-dir runs/ddp-demo --epochs 5 --milestones 4

bench-ddp: $(READY)  ## images/s of 1 vs 2 DDP processes on the CPU (see the script for GPU options)
	$(BIN)/python scripts/bench_ddp.py

# The plain-vs-residual experiment whose results the ablation page shows (docs/assets/ablation/), niced:
# the 3× run of plain-56 in the background, beside the main run's JOBS=2 processes of one thread, so
# that both cores stay busy to the end. The time it took is in scripts/run_ablation.py's docstring.
# DEVICE=cuda JOBS=1 runs it on a GPU.
DEVICE ?= cpu
JOBS ?= 2
ablation: $(READY)  ## re-make the committed ablation results
	nice -n 5 $(BIN)/python scripts/run_ablation.py --device $(DEVICE) --name degradation_long \
	  --kinds plain --depths 56 --seeds 0 --epochs 180 & long=$$!; \
	nice -n 5 $(BIN)/python scripts/run_ablation.py --device $(DEVICE) --jobs $(JOBS); main=$$?; \
	wait $$long && exit $$main

assignments: $(READY)  ## an nbgrader course source/ folder, one assignment per page, in build/course
	$(BIN)/python scripts/course.py assignments --course build/course

grade: $(READY)  ## autograde SUBMISSIONS=<folder> (<student>/<assignment>/<page>.ipynb) into build/course/grades.csv
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder of <student>/<assignment>/<page>.ipynb>"; exit 2; }
	$(BIN)/python scripts/course.py grade "$(SUBMISSIONS)" --course build/course

clean:  ## the built site, the executed-page cache (.cache: jupyter, views, mkdocs-jupyter), test artifacts
	rm -rf site .cache test-artifacts .pytest_cache
