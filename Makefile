# edgeae — every target sets up .venv first when it is missing.
PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
TRT_EXTRA  ?= tensorrt-rtx
DATA       ?= data/opencv
RUN        ?= runs/demo
EPOCHS     ?= 12
PY         := $(VENV)/bin/python
EDGEAE     := $(PY) -m edgeae.cli
FOOTAGE    := $(DATA)/vtest.avi

.PHONY: install test data train export engines demo bench bench-gpu deploy clean help
.DEFAULT_GOAL := help

help:
	@echo "make install   create $(VENV): $(TORCH_SPEC), then edgeae[train,dev] (override TORCH_SPEC for CUDA builds)"
	@echo "make test      run the test suite"
	@echo "make data      fetch OpenCV's sample footage into $(DATA)"
	@echo "make demo      data → train → export → parity → side-by-side reconstruction PNG"
	@echo "make engines   TensorRT engines fp32/fp16/int8 + int8 Q/DQ ONNX for $(RUN) (after export; TRT_EXTRA= skips TensorRT-RTX)"
	@echo "make train / export / bench / bench-gpu / deploy / clean"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[train,dev]"
	$(if $(TRT_EXTRA),$(PY) -m pip install -q -e ".[$(TRT_EXTRA)]")
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest

data: install
	PYTHON=$(PY) bash scripts/fetch_data.sh $(DATA)

# Train on the real footage when it is there, on synthetic scenes otherwise.
train: install
	$(EDGEAE) train --data $(if $(wildcard $(FOOTAGE)),$(FOOTAGE),synthetic) --epochs $(EPOCHS) --out $(RUN) \
	  $(if $(wildcard $(RUN)/last.pt),--resume,)

export: install
	$(EDGEAE) export $(RUN) $(if $(wildcard $(FOOTAGE)),--real-frames $(FOOTAGE),)

# TensorRT-RTX builds these on a machine without a GPU; int8 also writes the Q/DQ ONNX files.
engines: install
	$(EDGEAE) build $(RUN) --precision fp32
	$(EDGEAE) build $(RUN) --precision fp16
	$(EDGEAE) build $(RUN) --precision int8

demo: install
	-$(MAKE) --no-print-directory data
	$(MAKE) --no-print-directory train export
	$(EDGEAE) reconstruct $(RUN) $(if $(wildcard $(FOOTAGE)),$(FOOTAGE),synthetic) --out $(RUN)/side_by_side.png
	@echo "demo done: $(RUN)/side_by_side.png and $(RUN)/export_report.json"

clean:
	rm -rf runs demo reports/*.tmp .pytest_cache build *.egg-info
