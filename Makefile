# `make demo` and `make test` each set up .venv on a fresh machine; later runs reuse it.
VENV := .venv
PY := $(VENV)/bin/python
# Pinned so that every machine trains and tests with the same build.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install clean

$(VENV)/.installed: setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,lightning,huggingface]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest tests

demo: install
	$(PY) examples/quickstart.py --logdir runs/quickstart

clean:
	rm -rf $(VENV) runs .pytest_cache
