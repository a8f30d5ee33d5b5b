# `make demo` and `make test` each set up .venv on a fresh machine; later runs reuse it.
VENV := .venv
PY := $(VENV)/bin/python
# Pinned so that every machine trains and tests with the same build.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: demo demo-data test install system-deps clean

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

# The demo trains on real images: Debian's Fashion-MNIST (28x28 clothing photos), installed here as chromium
# is above. VanillaNet, NormNet and NASReg at 1/8 width, 2 seeds each, two at a time on the 2 cores, on 1,000
# training images of which 40% carry a wrong label, so that VanillaNet memorises within 25 epochs: 5 min 35 s
# measured (docs/reproduction.md). NASReg's lambda_i = 0.01 / r_i: the paper's 1 / r_i drives these narrow nets to identical filters.
# Where the package cannot be installed, the same models train on the embedded 8x8 digits instead.
FASHION_MNIST := /usr/share/datasets/fashion-mnist
DEMO := --models vanilla,normnet,nasreg --repeats 2 --label-noise 0.4 --distorted --width 0.125 \
	--nas-strength 0.01 --eb-batches 0 --threads 1 --jobs 2
DEMO_FASHION := --dataset fashion-mnist --train-size 1000 --test-size 500 --epochs 25
DEMO_DIGITS := --dataset digits --epochs 40

demo-data:
	@if [ ! -d $(FASHION_MNIST) ]; then \
	  echo "demo-data: installing Debian's dataset-fashion-mnist (real Fashion-MNIST) with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  { $$SUDO apt-get update && $$SUDO apt-get install -y dataset-fashion-mnist; } \
	    || echo "demo-data: could not install dataset-fashion-mnist: the demo trains on the embedded digits instead" >&2; \
	fi

demo: install demo-data
	rm -rf runs/demo
	if [ -d $(FASHION_MNIST) ]; then \
	  $(PY) -m training $(DEMO) $(DEMO_FASHION) --logdir runs/demo; \
	else \
	  $(PY) -m training $(DEMO) $(DEMO_DIGITS) --logdir runs/demo; \
	fi
	$(PY) -m training.report runs/demo
	$(PY) -m training.serve --logdir runs/demo

clean:
	rm -rf $(VENV) runs .pytest_cache
