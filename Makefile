# The front door. `make` builds build/yubin; `make run` serves a demo;
# `make test` runs every test (unit, fuzz corpora, integration) under
# AddressSanitizer and UBSan. Missing Debian packages are installed first.

PYTHON ?= /usr/bin/python3
BUILD ?= build
TEST_BUILD ?= build-test
FUZZ_SECONDS ?= 15
PYTEST_ARGS ?=
# A sanitizer report is a failure, not a warning.
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=0

.PHONY: all deps build run test unit fuzz-corpus integration fuzz bench bench-imap clean

all: build

deps:
	@scripts/deps.sh build

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

$(BUILD)/build.ninja:
	meson setup $(BUILD)

run: build
	@scripts/demo.sh $(BUILD)/yubin demo

$(TEST_BUILD)/build.ninja:
	CC=clang meson setup $(TEST_BUILD) -Db_sanitize=address,undefined \
		-Db_lundef=false -Dfuzz=true

test: build
	@scripts/deps.sh test
	scripts/check-source.sh
	$(MAKE) $(TEST_BUILD)/build.ninja
	ninja -C $(TEST_BUILD)
	$(MAKE) unit fuzz-corpus integration

unit:
	meson test -C $(TEST_BUILD) --print-errorlogs

fuzz-corpus:
	scripts/fuzz-corpus.sh $(TEST_BUILD) $(FUZZ_SECONDS)

integration:
	YUBIN_BIN=$(CURDIR)/$(TEST_BUILD)/yubin YUBIN_FAST_BIN=$(CURDIR)/$(BUILD)/yubin \
		$(PYTHON) -m pytest tests/integration tests/interop -q $(PYTEST_ARGS)

# Longer fuzzing: make fuzz FUZZ_SECONDS=600
fuzz: build
	@scripts/deps.sh test
	$(MAKE) $(TEST_BUILD)/build.ninja
	ninja -C $(TEST_BUILD)
	scripts/fuzz-corpus.sh $(TEST_BUILD) $(FUZZ_SECONDS)

bench:
	@scripts/deps.sh bench
	@[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release
	ninja -C build-release
	$(PYTHON) bench/pop3-bench.py --yubin-bin $(CURDIR)/build-release/yubin \
		--cache $(CURDIR)/build-release/bench-cache --quiet-wait 30

# IMAP against Dovecot IMAP; bench/imapload.c is compiled by the script.
bench-imap:
	@scripts/deps.sh bench
	@[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release
	ninja -C build-release yubin
	$(PYTHON) bench/imap-bench.py --yubin-bin $(CURDIR)/build-release/yubin \
		--cache $(CURDIR)/build-release/bench-cache --quiet-wait 30 $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(TEST_BUILD) build-release
