# make                      release build of every tool
# make install PREFIX=DIR   binaries, man pages and shell completions under DIR (default /usr/local)
# make test                 the test suite (same as `swift test`)
# make docs                 regenerate man/ and completions/ from the tools
PREFIX ?= /usr/local
DESTDIR ?=
TOOLS := $(basename $(notdir $(wildcard man/*.1)))
BIN := $(DESTDIR)$(PREFIX)/bin
MAN1 := $(DESTDIR)$(PREFIX)/share/man/man1
MAN5 := $(DESTDIR)$(PREFIX)/share/man/man5
BASH := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSH := $(DESTDIR)$(PREFIX)/share/zsh/site-functions
FISH := $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d

.PHONY: all build install uninstall test docs check-docs

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

uninstall:
	for t in $(TOOLS); do \
	    rm -f $(BIN)/$$t $(MAN1)/$$t.1 $(BASH)/$$t $(ZSH)/_$$t $(FISH)/$$t.fish; \
	done
	rm -f $(MAN5)/ru-vectors.5

test:
	swift test

docs:
	scripts/gen-docs

check-docs:
	scripts/gen-docs --check
