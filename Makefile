# LuminaNet Book: the two commands a reader needs.
#
#   make book   # build the executed book into book/_build/html (PROFILE=smoke|full|paper, default full)
#   make test   # run the test suite (tests/, notebooks included)
#   make lab    # open the chapters in JupyterLab (the .venv kernel, LUMINA_DATA set); prints the URL
#
# Both create .venv on first use (python3 -m venv) and install the project with its `book` and `test`
# extras into it; nothing is installed or registered outside .venv. Re-installation only happens when
# pyproject.toml changes (the stamp file below).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.lumina-installed
PROFILE ?= full
# Extra arguments for scripts/build_book.py, e.g. BOOK_ARGS=--no-browser
BOOK_ARGS ?=
# Extra arguments for pytest, e.g. PYTEST_ARGS='-k hygiene'
PYTEST_ARGS ?=
# Extra arguments for jupyter lab, e.g. LAB_ARGS='--ip=0.0.0.0 --port=8899'
LAB_ARGS ?=
# JupyterLab refuses to run as root without --allow-root (containers often run as root)
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

# Everything runs offline: the hub is never asked, datasets come from LUMINA_DATA.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
# Absolute, because notebooks run with their own folder as working directory.
ifeq ($(strip $(LUMINA_DATA)),)
  ifneq ($(wildcard ../shared/data/.),)
    LUMINA_DATA := $(abspath ../shared/data)
  else
    LUMINA_DATA := $(abspath data)
  endif
endif
export LUMINA_DATA

MATHJAX_VERSION := 3.2.2
MATHJAX_DIR     := book/_static/mathjax

.PHONY: help venv book test lab clean mathjax

help:
	@echo "make book  [PROFILE=smoke|full|paper] [BOOK_ARGS=--no-browser]  build book/_build/html"
	@echo "make test  [PYTEST_ARGS=...]                                    run tests/"
	@echo "make lab   [LAB_ARGS=...]                                       JupyterLab on book/ (prints the URL)"
	@echo "make clean                                                      remove book/_build"
	@echo "make mathjax                                                    re-vendor MathJax $(MATHJAX_VERSION) (npm)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# pip takes torch/torchvision from this machine's wheel folder (pip's find-links), the rest from PyPI.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[book,test]'
	touch $@

venv: $(STAMP)

book: $(STAMP)
	$(PY) scripts/build_book.py --profile $(PROFILE) $(BOOK_ARGS)

# The suite, then nbval on every notebook as committed (profile full, stored results only: LUMINA_LOAD_ONLY=1
# stops a run that would train): the cells tagged nbval-check-output must print their stored outputs. The
# playground trains by design and publishes nothing: it is left out (the smoke runs of the suite cover it).
NBVAL := -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-sanitize-with book/nbval_sanitize.cfg \
         --ignore=book/chapters/08_playground.ipynb
test: $(STAMP)
	$(PY) -m pytest -q tests/ $(PYTEST_ARGS)
	LUMINA_LOAD_ONLY=1 LUMINA_PROGRESS=0 $(PY) -m pytest -q $(NBVAL) book/intro.ipynb book/chapters/

# The server runs from .venv, so the notebooks' `python3` kernel is the project's interpreter; it exports
# LUMINA_DATA (above, absolute) and HF_*_OFFLINE. Kernels start in each notebook's folder, as in the build.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --no-browser $(ALLOW_ROOT) --ServerApp.root_dir=book $(LAB_ARGS)

clean:
	rm -rf book/_build

# MathJax is committed (book/_static/mathjax, ~2 MB) so the book renders math with no network.
# Only what `tex-chtml` needs is kept: the combined component, its woff-v2 fonts and the TeX
# extensions that \require/autoload may pull in (\boldsymbol, \color, \cancel, ...).
mathjax:
	@command -v npm >/dev/null || { echo "npm is needed: apt-get install -y npm"; exit 2; }
	rm -rf $(MATHJAX_DIR) && mkdir -p $(MATHJAX_DIR)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  (cd "$$tmp" && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null && tar xzf mathjax-$(MATHJAX_VERSION).tgz) && \
	  src="$$tmp/package" && \
	  cp "$$src/LICENSE" "$$src/es5/tex-chtml.js" $(MATHJAX_DIR)/ && \
	  mkdir -p $(MATHJAX_DIR)/output/chtml/fonts $(MATHJAX_DIR)/input/tex && \
	  cp -r "$$src/es5/output/chtml/fonts/woff-v2" $(MATHJAX_DIR)/output/chtml/fonts/ && \
	  cp -r "$$src/es5/input/tex/extensions" $(MATHJAX_DIR)/input/tex/ && \
	  printf 'MathJax %s (npm package mathjax, es5/), Apache-2.0 (see LICENSE).\nRegenerate with: make mathjax\n' \
	    $(MATHJAX_VERSION) > $(MATHJAX_DIR)/VENDORED.txt
	@du -sh $(MATHJAX_DIR)
