# make                      release build of every tool
# make install PREFIX=DIR   binaries, man pages and shell completions under DIR (default /usr/local)
# make test                 the test suite (same as `swift test`)
# make docs                 regenerate man/ and completions/ from the tools
# make fuzz FUZZ_SECONDS=N  each libFuzzer harness N seconds (default 60), one at a time; a table
#                           of executions, coverage and crashes (docs/FUZZING.md)
# make fuzz-seeds           rewrite the seed corpora Fuzz/corpus/ from the test fixtures
# make sanitize             the tests under ASan+UBSan (all) and TSan (the threaded ones)
# make cluster-test         (root) bulk encoding and sharded search on 3 hosts made of network
#                           namespaces, with sshd and GNU parallel (scripts/cluster-test,
#                           docs/SCALE.md); CLUSTER_BIN=DIR tests those tools, not a release build
PREFIX ?= /usr/local
DESTDIR ?=
TOOLS := $(basename $(notdir $(wildcard man/*.1)))
BIN := $(DESTDIR)$(PREFIX)/bin
MAN1 := $(DESTDIR)$(PREFIX)/share/man/man1
MAN5 := $(DESTDIR)$(PREFIX)/share/man/man5
BASH := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSH := $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISH := $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d

.PHONY: all build install uninstall test docs check-docs fuzz fuzz-build fuzz-seeds sanitize sanitize-address sanitize-thread cluster-test

all: build

build:
	swift build -c release

install: build
	install -d $(BIN) $(MAN1) $(MAN5) $(BASH) $(ZSH) $(FISH)
	for t in $(TOOLS); do \
	    install -m 755 "$$(swift build -c release --show-bin-path)/$$t" $(BIN)/$$t; \
	    install -m 644 man/$$t.1 $(MAN1)/$$t.1; \
	    install -m 644 completions/$$t.bash $(BASH)/$$t; \
	    install -m 644 completions/_$$t $(ZSH)/_$$t; \
	    install -m 644 completions/$$t.fish $(FISH)/$$t.fish; \
	done
	install -m 644 man/ru-vectors.5 $(MAN5)/ru-vectors.5
	install -m 644 man/ru-index.5 $(MAN5)/ru-index.5

uninstall:
	for t in $(TOOLS); do \
	    rm -f $(BIN)/$$t $(MAN1)/$$t.1 $(BASH)/$$t $(ZSH)/_$$t $(FISH)/$$t.fish; \
	done
	rm -f $(MAN5)/ru-vectors.5 $(MAN5)/ru-index.5

test:
	swift test

docs:
	scripts/gen-docs

check-docs:
	scripts/gen-docs --check

# The harnesses built with libFuzzer and AddressSanitizer in their own scratch path; the flags
# live here, not in Package.swift, so the package stays usable as a dependency.
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?=
FUZZ_CONFIG ?= debug
FUZZ_BUILD := swift build -c $(FUZZ_CONFIG) --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address \
    -Xswiftc -DFUZZING -Xcc -fsanitize=address --product ru-fuzz

fuzz-build:
	$(FUZZ_BUILD)

fuzz: fuzz-build
	FUZZ_BIN=.build-fuzz/$(FUZZ_CONFIG)/ru-fuzz scripts/fuzz $(FUZZ_SECONDS) $(FUZZ_HARNESSES)

fuzz-seeds:
	swift build
	scripts/make-fuzz-seeds

# Sanitizer runs, each in its own scratch path (docs/FUZZING.md). The tools the tests start
# are built with the same sanitizer, so their runs are checked too.
# ASan + UBSan: the whole suite, optimised (-c release, with -enable-testing for the tests'
# @testable imports). In debug the C kernels ran at -O0 under ASan and the model suites took
# most of CI: the debug run had not finished after 15 minutes on 2 cores (load 5, 2026-12-02);
# optimised, all 204 tests took 163 s (load 3-4). The release build costs more than a debug
# one (14.5 min from scratch at load 5), the run far less. ASan still checks every access the
# optimiser keeps (the usual fuzzing setup, -O1 and up).
# swiftc has no UBSan on Linux: UBSan checks the C kernels (-Xcc), and a report stops the process.
# TSan: the suites that run threads (OpenMP loops, oneDNN, the kernels on several threads, the
# tools end to end); the rest is single-threaded parsing, covered by the ASan run, so the
# TSan run stays a few minutes. .tsan-suppressions and .lsan-suppressions say why each entry is there.
ASAN_SKIP ?=
TSAN_TESTS ?= ParallelTests|AttentionKernelTests|EmbedModelTests|EmbedInt8Tests|SearchToolTests|StreamingTests|LibraryTests|ClusterTests|ClusterWorkerTests
SANITIZE_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 LSAN_OPTIONS=suppressions=$(CURDIR)/.lsan-suppressions:print_suppressions=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    TSAN_OPTIONS="suppressions=$(CURDIR)/.tsan-suppressions halt_on_error=0 second_deadlock_stack=1"

ASAN_FLAGS := --sanitize=address -Xcc -fsanitize=undefined -Xswiftc -enable-testing

sanitize: sanitize-address sanitize-thread

sanitize-address:
	swift build -c release --build-tests --scratch-path .build-asan $(ASAN_FLAGS)
	$(SANITIZE_ENV) swift test -c release --skip-build --scratch-path .build-asan $(ASAN_FLAGS) $(if $(ASAN_SKIP),--skip '$(ASAN_SKIP)')

sanitize-thread:
	swift build --build-tests --scratch-path .build-tsan --sanitize=thread
	$(SANITIZE_ENV) swift test --skip-build --scratch-path .build-tsan --sanitize=thread --filter '$(TSAN_TESTS)'

# Three hosts inside this machine (network namespaces, sshd, GNU parallel over ssh): needs root,
# iproute2, openssh-server, parallel, rsync. CI passes CLUSTER_BIN=.build-asan/release, the
# sanitizer build it has already made: a release build would add about 5 minutes to CI, and the
# tools then run under ASan+UBSan on the hosts too.
CLUSTER_BIN ?=
cluster-test: $(if $(CLUSTER_BIN),,build)
	$(SANITIZE_ENV) scripts/cluster-test $(if $(CLUSTER_BIN),$(CLUSTER_BIN),"$$(swift build -c release --show-bin-path)")
