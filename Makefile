# Two commands do the whole set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/dagster_home
DEMO_ID := civil-war-demo

.PHONY: install renderer demo test test-fast lint dev serve bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

# The Remotion renderer's packages (npm ci from the committed lock file). Without Node/npm the movie is
# rendered by the ffmpeg engine instead (docs/rendering.md).
RENDERER_STAMP := renderer/node_modules/.installed
$(RENDERER_STAMP): renderer/package.json renderer/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd renderer && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed && \
		{ node render.mjs --bundle node_modules/.cache/moviegen-bundles >/dev/null || echo "bundling failed: the first Remotion render bundles"; }; \
	else echo "npm not found: skipping the Remotion renderer; movies render with the ffmpeg engine"; fi

renderer: $(RENDERER_STAMP)

install: $(STAMP) $(RENDERER_STAMP)

# The render engine is a setting, never guessed by a process from what it finds installed (a webserver and
# a worker must agree on code versions). Here, once for the processes these targets start: Remotion where
# Node, the renderer's packages and Chromium are there, else the ffmpeg engine. Set MOVIEGEN_RENDER_ENGINE
# yourself to choose.
REMOTION_CAN_RUN = command -v node >/dev/null 2>&1 && [ -d renderer/node_modules/@remotion/renderer ] && \
	{ [ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ] || [ -x "$$MOVIEGEN_BROWSER" ]; }
demo dev serve: export MOVIEGEN_RENDER_ENGINE ?= $(shell if $(REMOTION_CAN_RUN); then echo remotion; else echo ffmpeg; fi)

demo: install
	@mkdir -p "$(DAGSTER_HOME)"
	@echo "Render engine: $$MOVIEGEN_RENDER_ENGINE (MOVIEGEN_RENDER_ENGINE; docs/rendering.md)"
	@$(BIN)/moviegen list | grep -qx $(DEMO_ID) || $(BIN)/moviegen new examples/civil-war.yaml --id $(DEMO_ID)
	$(BIN)/moviegen generate $(DEMO_ID)
	@echo
	@echo "Movie:     $$($(BIN)/moviegen render $(DEMO_ID) --json | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["uri"].removeprefix("file://"))')"
	@echo "Timeline:  $$($(BIN)/moviegen timeline $(DEMO_ID))"
	@echo "Media:     $(DAGSTER_HOME)/artifacts/movies/$(DEMO_ID)/"
	@echo "Next:      make dev   (Dagster UI on http://127.0.0.1:3000, every artifact as a partitioned asset)"
	@echo "           then drop a request file into $(DAGSTER_HOME)/inbox/ (docs/sensors.md)"

# Everything: the import rules and lint, then every test (unit, integration through Dagster, end to end),
# test files spread over TEST_WORKERS processes (most of the suite waits on Dagster runs, subprocesses
# and servers; on 2 cores 2 workers took it from 609 s to 421 s). TEST_WORKERS=0: one process.
# --no-loadscope-reorder: files go out in tests/conftest.py's order (slow layers first, the short unit
# files last to even out the workers), not xdist's most-tests-first, which left the slowest files for last.
TEST_WORKERS ?= 2
test: install lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The unit layer only: seconds, no Dagster instance, no servers.
test-fast: install
	$(BIN)/pytest -q tests/unit

# The layering contracts (pyproject.toml [tool.importlinter]) and ruff, including no imports inside
# functions to slip past them.
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .

# The UI and daemon, and the media server its play links point to (stopped with them).
dev: install
	@mkdir -p "$(DAGSTER_HOME)"
	@$(BIN)/moviegen media & MEDIA=$$!; trap 'kill $$MEDIA 2>/dev/null' EXIT INT TERM; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# The hosted service (docs/service.md): the HTTP API and the studio on http://$(SERVE_LISTEN)/, and the Dagster
# daemon that runs its queued generations (stopped with it), on the embedded default: SQLite, local disk.
# A token: .venv/bin/moviegen token create TENANT.
SERVE_LISTEN ?= 127.0.0.1:8080
serve: install
	@mkdir -p "$(DAGSTER_HOME)"
	@$(BIN)/moviegen list >/dev/null  # the instance's storage, made once before the daemon and the service open it
	@$(BIN)/dagster-daemon run -w workspace.yaml & DAEMON=$$!; trap 'kill $$DAEMON 2>/dev/null' EXIT INT TERM; \
	$(BIN)/moviegen serve --listen $(SERVE_LISTEN)

bench: install
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/bench_regenerate.py
	$(BIN)/python bench/bench_sensor.py
	$(BIN)/python bench/bench_render.py
	$(BIN)/python bench/bench_service.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache renderer/node_modules
