# soundloc — the two commands the README promises, plus their parts.
#   make demo   set up this machine, build, and run the built-in example (no camera or microphone needed)
#   make test   set up this machine (incl. test-only tools), build, and run every test
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3

.PHONY: demo test setup setup-test build release swift-test python-test bench clean

demo: setup release
	.build/release/soundloc demo --out out/demo

test: setup-test
	$(SWIFT) build --build-tests
	$(MAKE) --no-print-directory swift-test python-test

setup:
	Tools/setup.sh

setup-test:
	Tools/setup.sh --test

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release --product soundloc

swift-test:
	$(SWIFT) test --skip-build

python-test:
	PYTHONPATH=Tools $(PYTHON) -m pytest -q Tools/tests

bench: release
	.build/release/soundloc bench features

clean:
	rm -rf .build out
