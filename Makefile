# Two commands do all the setup: `make run` and `make test` create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# torch is installed first, pinned to one version: on this kind of machine pip takes the
# CPU wheel from its local wheel folder (seconds); elsewhere pip fetches that version
# from the package index, which on Linux is the CUDA build a GPU machine needs.
# Choose another build with e.g. `make run TORCH_SPEC="torch==2.14.1"`.
TORCH_SPEC ?= torch==2.13.0
STORE ?= sqlite:///mlruns/mlflow.db

.PHONY: setup ray-venv run test test-fast lint format bench bench-scale ui dashboard server clean

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

# hydra/launcher=ray in a venv of its own: hydra-ray-launcher pins cloudpickle<3, which
# takes joblib back to 1.5.x; .venv keeps the versions a plain `pip install learnai` gets.
# tests/scale/test_ray.py runs its sweeps and its Ray cluster with this venv's Python.
RAY_VENV ?= .venv-ray
RAY_STAMP := $(RAY_VENV)/.installed-stamp
$(RAY_STAMP): pyproject.toml Makefile
	@test -x $(RAY_VENV)/bin/python || $(PYTHON) -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/python -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	$(RAY_VENV)/bin/python -m pip install -q --disable-pip-version-check -e ".[ray,postgres]"
	@touch $(RAY_STAMP)

ray-venv: $(RAY_STAMP)

# The tutorial's lesson as one sweep: lr 0.01 converges, lr 1 fails.
run: $(STAMP)
	$(PY) -m learnai -m optimizer.lr=0.01,1

# Every tier (in-process, e2e, postgres, browser, ray, root, packaging), two at a time
# (a module's tests on one worker: they share its fixtures);
# the slowest 15 tests are listed at the end. `make test-fast` (= `pytest`): in-process only.
test:
	@$(MAKE) --no-print-directory -j2 $(STAMP) $(RAY_STAMP)  # both venvs at once
	$(PY) -m pytest -m "" -n 2 --dist loadscope --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest --durations=15

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) -m experiments.bench
	$(PY) -m experiments.bench_vectorized  # hydra/launcher=vectorized against basic

# Workers on one PostgreSQL study + the tracking server's load (needs PostgreSQL at
# $LEARNAI_BENCH_PG, default postgresql://postgres@127.0.0.1:5432). BENCH_ARGS=--quick
BENCH_ARGS ?=
bench-scale: $(STAMP)
	$(PY) -m experiments.scale_bench $(BENCH_ARGS)

STUDY_STORE ?= sqlite:///mlruns/optuna.db

# Both take learnai's schema lock first: a UI started beside a first run must not race
# it creating the store's tables. Each serves on 127.0.0.1:PORT (make ui PORT=5001); a
# taken port is refused in one line (mlflow ui would exit 0 after uvicorn's error).
ui: $(STAMP)
	@$(PY) -m learnai.commands.port_check $(PORT) ui
	$(PY) -m learnai.tracking.stores prepare $(STORE)
	$(PY) -m mlflow ui --backend-store-uri $(STORE) --port $(PORT)

dashboard: PORT = 8080
dashboard: $(STAMP)
	@$(PY) -m learnai.commands.port_check $(PORT) dashboard
	$(PY) -m learnai.tracking.stores prepare --optuna $(STUDY_STORE)
	$(VENV)/bin/optuna-dashboard $(STUDY_STORE) --port $(PORT)

# A team's tracking server: runs in a database, artifacts served over HTTP (no shared
# folder), bound to loopback unless HOST says otherwise. The password goes in PGPASSWORD.
#   make server DB=postgresql://mlflow@db:5432/runs ARTIFACTS=/srv/mlflow PORT=5000
DB ?= $(STORE)
ARTIFACTS ?= mlruns/server-artifacts
HOST ?= 127.0.0.1
PORT ?= 5000
SERVER_ARGS ?=
server: $(STAMP)
	$(PY) -m learnai.commands.server --db $(DB) --artifacts $(ARTIFACTS) --host $(HOST) --port $(PORT) $(SERVER_ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
