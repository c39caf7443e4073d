# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
# The venv is created on first use; torch is pinned to the CPU wheel by constraints/cpu.txt
# so the install never pulls CUDA packages (see README: "GPU machines").

VENV      ?= .venv
PYTHON    ?= python3
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.axonseg-installed
PIP       := $(PY) -m pip install -q -c constraints/cpu.txt

.PHONY: install demo test test-slow test-all bench clean

$(STAMP): pyproject.toml constraints/cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) "torch==2.13.0"
	$(PIP) -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/axonseg demo --out demo_out

# GUI tests (napari) need a display: under xvfb-run when it is installed, else they skip.
XVFB      := $(shell command -v xvfb-run >/dev/null 2>&1 && echo "xvfb-run -a")

test: $(STAMP)
	$(XVFB) $(VENV)/bin/pytest -q --durations=15

test-slow: $(STAMP)
	$(XVFB) $(VENV)/bin/pytest -q -m slow

test-all: $(STAMP)
	$(XVFB) $(VENV)/bin/pytest -q -m "slow or not slow"

# The peers each benchmark compares against (monai, waterz, mwatershed) come with the bench extra;
# without them the ratios would come out null.
bench: $(STAMP)
	$(PIP) -e ".[bench]"
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf demo_out .pytest_cache
