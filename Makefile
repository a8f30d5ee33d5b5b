# `make demo` and `make test` each set up .venv on a fresh machine; later runs reuse it.
VENV := .venv
PY := $(VENV)/bin/python
# Pinned so that every machine trains and tests with the same build.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install system-deps clean

$(VENV)/.installed: setup.py
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,lightning,huggingface]'
	touch $@

install: $(VENV)/.installed

# The browser tests of the NAS tab (tests/test_frontend*.py) drive Debian's chromium through Playwright.
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "system-deps: /usr/bin/chromium is missing; installing it with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; } || { \
	    echo "system-deps: ERROR: could not install chromium (apt-get install -y chromium failed)." >&2; \
	    echo "system-deps: install it as root so that /usr/bin/chromium exists; the browser tests need it." >&2; \
	    exit 1; }; \
	  [ -x /usr/bin/chromium ] || { echo "system-deps: ERROR: chromium installed but /usr/bin/chromium is missing" >&2; exit 1; }; \
	fi

test: install system-deps
	$(PY) -m pytest tests

# The paper's VanillaNet, DropNet, NormNet and NASReg, 3 seeds each, on the embedded 8x8 digits (40% of the
# training labels wrong so that VanillaNet overfits), shrunk to 1/8 width: about 5 minutes on 2 CPU cores.
# NASReg's lambda_i = 0.01 / r_i: the paper's 1 / r_i drives these narrow nets to identical filters.
DEMO := --models vanilla,dropnet,normnet,nasreg --dataset digits --label-noise 0.4 --distorted \
	--epochs 40 --repeats 3 --width 0.125 --nas-strength 0.01 --threads 1

demo: install
	rm -rf runs/demo
	$(PY) -m training $(DEMO) --logdir runs/demo
	$(PY) -m training.report runs/demo
	$(PY) -m training.serve --logdir runs/demo

clean:
	rm -rf $(VENV) runs .pytest_cache
