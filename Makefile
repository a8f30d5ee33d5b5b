# `make demo` and `make test` each set up .venv on a fresh machine; later runs reuse it.
# `make demo` installs the package alone; `make test` adds the test, Lightning and Hugging Face extras.
VENV := .venv
PY := $(VENV)/bin/python
# Pinned so that every machine trains and tests with the same build.
TORCH := torch==2.14.1 torchvision==0.29.1
# Words of this project that codespell takes for misspellings (`runN`, a run-name suffix).
SPELLING_IGNORED := runn
DOCS := README.md CHANGELOG.md $(wildcard docs/*.md)
# Named in a variable: a comma inside $(call ...)'s arguments would split them.
TEST_EXTRAS := .[test,lightning,huggingface]
# `$(call pip,ARGS)`: pip install whose output is shown only when it fails, so that make prints one line per stage.
pip = $(PY) -m pip install --quiet $(1) >$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log >&2; exit 1; }

.PHONY: demo demo-data test check-docs install install-test system-deps clean

$(VENV)/.installed: setup.py
	@echo "install: creating $(VENV) with $(TORCH) and nas-tensorboard (a few minutes the first time)"
	@python3 -m venv $(VENV)
	@$(call pip,--upgrade pip)
	@$(call pip,$(TORCH))
	@$(call pip,-e .)
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed setup.py
	@echo "install: the test, Lightning and Hugging Face extras into $(VENV)"
	@$(call pip,-e '$(TEST_EXTRAS)')
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The browser tests of the NAS tab (tests/test_frontend*.py) drive Debian's chromium through Playwright.
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "system-deps: /usr/bin/chromium is missing; installing it with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -qq -y chromium >/dev/null; } || { \
	    echo "system-deps: ERROR: could not install chromium (apt-get install -y chromium failed)." >&2; \
	    echo "system-deps: install it as root so that /usr/bin/chromium exists; the browser tests need it." >&2; \
	    exit 1; }; \
	  [ -x /usr/bin/chromium ] || { echo "system-deps: ERROR: chromium installed but /usr/bin/chromium is missing" >&2; exit 1; }; \
	fi

# Spelling (codespell) and every relative link and #anchor (mdlinkcheck, offline) of the Markdown docs.
check-docs: $(VENV)/.installed-test
	@echo "check-docs: spelling and links of README.md, CHANGELOG.md and docs/*.md"
	@$(PY) -m codespell_lib --ignore-words-list $(SPELLING_IGNORED) $(DOCS)
	@$(PY) -m mdlinkcheck --quiet --no-git $(DOCS)

test: install-test system-deps check-docs
	@echo "test: the whole suite (browser tests included)"
	@$(PY) -m pytest tests

# The demo trains on real images: Debian's Fashion-MNIST (28x28 clothing photos), installed here as chromium
# is above. VanillaNet, NormNet and NASReg at 1/8 width, 2 seeds each, two at a time on the 2 cores, on 1,000
# training images of which 40% carry a wrong label, so that VanillaNet memorises within 25 epochs.
# NASReg's strength 0.01 keeps its term near the cross-entropy's size on these narrow nets (docs/sdk.md#nasreg).
# Where the package cannot be installed, the same models train on scikit-learn's 8x8 digits instead.
FASHION_MNIST := /usr/share/datasets/fashion-mnist
DEMO := --models vanilla,normnet,nasreg --repeats 2 --label-noise 0.4 --distorted --width 0.125 \
	--nas-strength 0.01 --eb-batches 0 --threads 1 --jobs 2
DEMO_FASHION := --dataset fashion-mnist --train-size 1000 --test-size 500 --epochs 25
DEMO_DIGITS := --dataset digits --epochs 40

demo-data:
	@if [ ! -d $(FASHION_MNIST) ]; then \
	  echo "demo-data: installing Debian's dataset-fashion-mnist (real Fashion-MNIST) with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
	  { $$SUDO apt-get update -qq && $$SUDO apt-get install -qq -y dataset-fashion-mnist >/dev/null; } \
	    || echo "demo-data: could not install dataset-fashion-mnist: the demo trains on the embedded digits instead" >&2; \
	fi

demo: install demo-data
	@rm -rf runs/demo
	@echo "demo: training 6 runs into runs/demo, two at a time (half an hour on 2 busy cores)"
	@if [ -d $(FASHION_MNIST) ]; then \
	  $(PY) -m training $(DEMO) $(DEMO_FASHION) --logdir runs/demo; \
	else \
	  { $(call pip,scikit-learn); } && \
	  $(PY) -m training $(DEMO) $(DEMO_DIGITS) --logdir runs/demo; \
	fi
	@$(PY) -m training.report runs/demo
	@$(PY) -m training.serve --logdir runs/demo

clean:
	rm -rf $(VENV) runs .pytest_cache
