# ferry: build, test, benchmark.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(GOBIN)/versitygw

.PHONY: all build test test-servers test-windows vet bench crash-long clean

all: build

build:
	$(GO) build -o ferry ./cmd/ferry

# The pinned test servers, installed from the Go module proxy.
test-servers: $(VERSITYGW)
$(VERSITYGW):
	GOFLAGS=-mod=mod $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

vet:
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	GOOS=windows $(GO) build ./...

# The whole suite, with the race detector, against real servers on loopback.
test: test-servers vet
	FERRY_VERSITYGW=$(VERSITYGW) $(GO) test -race -timeout 20m ./...

# The packages with Windows-specific code, as Windows binaries under Wine
# (see ../shared/wine/README.md). Wine is not Windows: evidence, not proof.
WINE_DIR ?= ../shared/wine
WINE_PKGS := ./internal/srcfile/ ./watcher/ ./journal/ ./uploader/ ./uploader/sink/fssink/
test-windows:
	bash $(WINE_DIR)/setup.sh
	GOOS=windows $(GO) test -exec "$(abspath $(WINE_DIR))/exec" -timeout 10m $(WINE_PKGS)
	GOOS=windows $(GO) test -exec "$(abspath $(WINE_DIR))/exec" -timeout 5m -run 'TestService' ./cmd/ferry/

# Throughput and peak RSS for a 100 MiB and a 2 GiB file against versitygw.
bench: test-servers
	FERRY_VERSITYGW=$(VERSITYGW) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./cmd/ferry

# The long kill -9 run (100 kills); the short one (20) is part of make test.
CRASH_KILLS ?= 100
CRASH_SEED ?= 1
crash-long: test-servers
	FERRY_VERSITYGW=$(VERSITYGW) FERRY_CRASH_KILLS=$(CRASH_KILLS) FERRY_CRASH_SEED=$(CRASH_SEED) \
		$(GO) test -run '^TestCrashKill9$$' -count 1 -v -timeout 30m ./cmd/ferry

clean:
	rm -f ferry
