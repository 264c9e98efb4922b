# Two commands: `make demo` (set up + run the main job) and `make test` (set up + run tests).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: demo test bench install lint chromium pdf-deps clean

install: $(STAMP)

# Reinstall only when the packaging files change (idempotent and fast otherwise).
# pip byte-compiles what it installs on one core; compileall on all cores takes about half
# that time (measured 151 s vs 100-134 s in all; a few third-party files are not Python 3
# and fail, as they do under pip).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --no-compile -c constraints.txt -e '.[dev]'
	@$(PY) -m compileall -qq -j 0 $(VENV)/lib || true
	@touch $(STAMP)

demo: install pdf-deps
	$(VENV)/bin/dunning demo

test: install chromium pdf-deps
	$(PY) -m pytest -n 2 --durations=15 tests

bench: install
	@for f in benchmarks/bench_*.py benchmarks/payment_model_ibm.py; do \
		[ -f $$f ] || continue; echo "== $$f"; $(PY) $$f || exit 1; done

lint: install
	$(VENV)/bin/ruff check engine policies legal_rules simulations dunning tests benchmarks

# Headless Chromium for the HTML report tests and its driver for the workspace's Selenium
# tests (Debian packages; Selenium is pointed at /usr/bin/chromedriver, nothing downloads).
chromium:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) \
		|| echo "warning: could not install chromium/chromium-driver; browser tests will fail"; }

# Letter PDFs: WeasyPrint needs the pango libraries; the letter-safety test reads the PDF
# text with pdftotext and lists its images with pdfimages (poppler-utils). Debian packages.
pdf-deps:
	@{ ldconfig -p | grep -q libpango-1.0 && command -v pdftotext >/dev/null 2>&1; } || { \
		(apt-get update -qq && apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 \
		 poppler-utils >/dev/null) \
		|| echo "warning: could not install pango/poppler-utils; letter PDFs will fail"; }

clean:
	rm -rf $(VENV) dunning-data .pytest_cache
