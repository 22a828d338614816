# pidkd: `make figures` regenerates every figure and table, `make test` checks everything
# (`make unit`: the unit tests alone). Each sets up .venv on first use; PYTHON=python make ...
# uses an interpreter you already have.
PROFILE ?= embedded
# A profile file's path as papermill sees it (it runs in notebooks/), and the name its results go under.
PROFILE_ARG := $(if $(filter %.yaml %.yml,$(PROFILE)),$(abspath $(PROFILE)),$(PROFILE))
PROFILE_NAME := $(basename $(notdir $(PROFILE)))
KERNEL := pidkd
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))

ifeq ($(origin PYTHON),undefined)
PY := .venv/bin/python
ENV := .venv/.installed
else
PY := $(PYTHON)
ENV := env-current
endif

.PHONY: env env-current figures lab unit notebooks test reference gpu-check clean

env: $(ENV)

# A fresh .venv with the package (editable), its dev extra, JupyterLab, and the notebooks' Jupyter
# kernel; rebuilt only when pyproject.toml changes.
.venv/.installed: pyproject.toml
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/python -m pip install --quiet --upgrade pip
	.venv/bin/python -m pip install --quiet -e ".[dev,lab]"
	.venv/bin/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (pidkd)" >/dev/null
	touch $@

# An interpreter of the user's own: install into it only what it lacks.
env-current:
	@$(PY) -c "import pidkd, nbval, papermill, jupyterlab" 2>/dev/null || $(PY) -m pip install --quiet -e ".[dev,lab]"
	@$(PY) -m jupyter kernelspec list 2>/dev/null | grep -q "^ *$(KERNEL) " || \
		$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (pidkd)" >/dev/null

# Embedded notebooks are re-executed in place (they carry the committed outputs); other
# profiles, shipped or a YAML file's path (PROFILE=my.yaml), write executed copies under
# results/<profile name>/notebooks/.
figures: $(ENV)
	@mkdir -p results/$(PROFILE_NAME)/notebooks
	@outs=; for nb in $(NOTEBOOKS); do \
		out=$$nb; [ "$(PROFILE)" = embedded ] || out=results/$(PROFILE_NAME)/notebooks/$$(basename $$nb); \
		outs="$$outs $$out"; echo "papermill $$nb -> $$out"; \
		TQDM_DISABLE=1 $(PY) -m papermill "$$nb" "$$out" -k $(KERNEL) --cwd notebooks \
			-p profile "$(PROFILE_ARG)" --no-progress-bar || { $(PY) -m pidkd.study.notebooks $$outs; exit 1; }; \
	done; $(PY) -m pidkd.study.notebooks $$outs

# JupyterLab on the notebooks, with the project's kernel.
lab: $(ENV)
	$(PY) -m jupyter lab notebooks

unit: $(ENV)
	$(PY) -m pytest tests

# nbval re-executes the committed notebooks: outputs that do not depend on the machine are compared
# exactly, and each notebook checks its training-derived numbers against the profile's committed
# reference within tolerances (docs/reproducibility.md).
notebooks: $(ENV)
ifneq ($(NOTEBOOKS),)
	TQDM_DISABLE=1 $(PY) -m pytest --nbval --nbval-current-env $(NOTEBOOKS)
endif

test: unit notebooks

# After `make figures` on the machine whose outputs are committed: its training-derived numbers
# become the embedded profile's reference.
reference:
	cp results/embedded/checked.csv pidkd/profiles/embedded-reference.csv

# On a CUDA machine (Colab first): a short epoch of each method, losses against fp32, images/s and
# the projected quick and paper grids; without CUDA it says so and exits 0.
gpu-check: $(ENV)
	$(PY) -m pidkd check-gpu

clean:
	rm -rf results
