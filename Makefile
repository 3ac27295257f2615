# The two commands a user needs (see README):  make app   |   make test
# Both are idempotent: they create .venv on first use and reuse it afterwards.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8501
SUDO   := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: app test install browser lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first: 2.13.0 is the CPU wheel available locally; the range in pyproject accepts it.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the real-browser tests (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || ( $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null )

# Extra model folders for the app: make app MODELS="DIR1 DIR2" (appended to $LLTOOLS_MODELS,
# which is os.pathsep-separated). Loading a folder runs its model.py: only folders you trust.
MODELS ?=
EMPTY  :=
SPACE  := $(EMPTY) $(EMPTY)
APP_MODELS := $(subst $(SPACE),:,$(strip $(MODELS) $(subst :, ,$(LLTOOLS_MODELS))))

app: $(STAMP)
	LLTOOLS_MODELS="$(APP_MODELS)" $(BIN)/streamlit run dashboard/app.py --server.port $(PORT) --server.headless true

# The non-browser tests on two worker processes (one torch thread each, tests/conftest.py),
# then the real-browser tests alone, so that their timings do not compete with other tests.
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 --dist loadscope -m "not browser"
	$(BIN)/python -m pytest -q -m browser

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
