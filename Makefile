# soundloc — the two commands the README promises, plus their parts.
#   make demo   set up this machine, build, and run the built-in example (no camera or microphone needed)
#   make test   set up this machine (incl. test-only tools), build, and run every test
#   make deb    a Debian package in out/deb; make install [PREFIX=/usr/local] [DESTDIR=]: the same files, unpacked
SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3

.PHONY: demo test setup setup-test build release swift-test python-test bench clean sanitize sanitize-thread sanitize-address \
	deb install

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

# The pipeline, socket server (output) and engine suites under ThreadSanitizer, then AddressSanitizer, each built in
# its own scratch folder (.build-tsan, .build-asan), never in the shared .build. SANITIZE_FILTER narrows them.
# LeakSanitizer stays off: XCTest on Linux leaks its own test-case objects (the fuzz harness checks leaks instead).
SANITIZE_FILTER ?= SoundlocPipelineTests|SoundlocOutputTests|SoundlocEngineTests
SCRATCH_thread := .build-tsan
SCRATCH_address := .build-asan
sanitize: sanitize-thread sanitize-address

sanitize-thread sanitize-address: sanitize-%:
	$(SWIFT) build --build-tests --scratch-path $(SCRATCH_$*) --sanitize $*
	SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 \
		$(SWIFT) test --skip-build --scratch-path $(SCRATCH_$*) --sanitize $* --filter '$(SANITIZE_FILTER)'

# Installing: a release binary with the Swift runtime linked in, built in its own scratch folder (.build-deb), then
# copied to DESTDIR/PREFIX (install) or packed into out/deb/soundloc_VERSION_ARCH.deb (deb). Tools/package.sh says
# what goes where.
PREFIX ?= /usr/local
DESTDIR ?=
install: setup
	SWIFT=$(SWIFT) Tools/package.sh install '$(PREFIX)' '$(DESTDIR)'

deb: setup
	SWIFT=$(SWIFT) Tools/package.sh deb out/deb

bench: release
	.build/release/soundloc bench features

clean:
	rm -rf .build out
