# ferry: build, test, benchmark.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(GOBIN)/versitygw

.PHONY: all build man completion package package-deb package-rpm package-zip version test test-servers rocrate-validator test-windows vet staticcheck bench crash-long clean

all: build

# The version `ferry version` shows, from git describe (no tags yet: the
# commit), and the one the packages carry (packaging/pkgversion.sh: valid for
# deb and rpm, e.g. v1.2.3 -> 1.2.3, no tag -> 0.0.0~gitSHA).
VERSION     := $(shell git describe --tags --always --dirty 2>/dev/null)
PKG_VERSION  = $(shell sh packaging/pkgversion.sh '$(VERSION)')
LDFLAGS     := -X main.version=$(VERSION)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o ferry ./cmd/ferry

version:
	@echo "VERSION=$(VERSION)"
	@echo "PKG_VERSION=$(PKG_VERSION)"

# Packages, into $(DIST): ferry_VERSION_amd64.deb and .rpm (nfpm, from
# packaging/nfpm.yaml) and ferry_VERSION_windows_amd64.zip.
DIST         ?= dist
NFPM_VERSION := v2.45.2
NFPM         ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
LINUX_BIN    := $(DIST)/linux_amd64/ferry
WINDOWS_BIN  := $(DIST)/windows_amd64/ferry.exe

package: package-deb package-rpm package-zip

pkg-version-check:
	@test -n "$(VERSION)" || { echo "no version: git describe failed (set VERSION=...)" >&2; exit 1; }
	@test -n '$(PKG_VERSION)' || { echo "no package version for VERSION=$(VERSION) (set PKG_VERSION=...)" >&2; exit 1; }

$(LINUX_BIN) $(WINDOWS_BIN): pkg-version-check FORCE
	mkdir -p $(@D)
	CGO_ENABLED=0 GOOS=$(if $(filter %.exe,$@),windows,linux) GOARCH=amd64 \
		$(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $@ ./cmd/ferry

package-deb package-rpm: package-%: $(LINUX_BIN) man completion
	FERRY_PKG_VERSION='$(PKG_VERSION)' FERRY_BIN='$(LINUX_BIN)' FERRY_DIST='$(DIST)' \
		$(NFPM) package --config packaging/nfpm.yaml --packager $* --target $(DIST)/ferry_$(PKG_VERSION)_amd64.$*

# The man pages, one per command (ferry.1, ferry-run.1, ...), generated from
# the command tree by a build with -tags man (cmd/ferry/man.go), dated by
# the last commit; and the bash completion. The .deb and .rpm install both.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
man:
	rm -rf $(DIST)/man && mkdir -p $(DIST)/man
	SOURCE_DATE_EPOCH='$(SOURCE_DATE_EPOCH)' $(GO) run -tags man -ldflags "$(LDFLAGS)" ./cmd/ferry __man $(DIST)/man

completion:
	mkdir -p $(DIST)/completion
	$(GO) run ./cmd/ferry completion bash > $(DIST)/completion/ferry

package-zip: $(WINDOWS_BIN)
	$(GO) run ./packaging/mkzip -o $(DIST)/ferry_$(PKG_VERSION)_windows_amd64.zip \
		ferry.exe=$(WINDOWS_BIN) config.example.toml=config.example.toml \
		INSTALL.txt=packaging/windows/INSTALL.txt README.md=README.md \
		grafana/ferry.json=packaging/grafana/ferry.json

.PHONY: pkg-version-check FORCE
FORCE:

# The pinned test servers, installed from the Go module proxy, and the
# RO-Crate validator (npm's ro-crate, pinned in tools/rocrate) the dataset
# tests run on the crates ferry writes.
test-servers: $(VERSITYGW) rocrate-validator
$(VERSITYGW):
	GOFLAGS=-mod=mod $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

ROCRATE_DIR := tools/rocrate
rocrate-validator: $(ROCRATE_DIR)/node_modules/.package-lock.json
$(ROCRATE_DIR)/node_modules/.package-lock.json: $(ROCRATE_DIR)/package-lock.json
	npm ci --prefix $(ROCRATE_DIR) --no-audit --no-fund

vet: staticcheck
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	GOOS=windows $(GO) build ./...

# staticcheck, pinned, from the Go module proxy; CI keeps it clean.
STATICCHECK_VERSION := v0.8.2
staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# The whole suite, with the race detector, against real servers on loopback.
test: test-servers vet
	FERRY_VERSITYGW=$(VERSITYGW) $(GO) test -race -timeout 20m ./...

# The packages with Windows-specific code, as Windows binaries under Wine
# (see tools/wine/README.md). Wine is not Windows: evidence, not proof.
WINE_DIR ?= tools/wine
WINE_PKGS := ./internal/srcfile/ ./watcher/ ./journal/ ./uploader/ ./uploader/sink/fssink/
# Wine maps Unix file names through the locale: without a UTF-8 one (a
# bare CI environment), names like "größe ü.tif" cannot be created.
test-windows: export LC_ALL = C.UTF-8
test-windows:
	bash $(WINE_DIR)/setup.sh
	GOOS=windows $(GO) test -exec "$(abspath $(WINE_DIR))/exec" -timeout 10m $(WINE_PKGS)
	GOOS=windows $(GO) test -exec "$(abspath $(WINE_DIR))/exec" -timeout 5m -run 'TestService' ./cmd/ferry/ ./internal/service/

# Throughput, CPU, peak RSS and bytes read of ferry and rclone side by side
# in one run (1 x 100 MiB, 1 x 2 GiB, 4 x 256 MiB, 10,000 x 16 KiB,
# 50,000 x 4 KiB) against versitygw; rclone is built once from the module
# proxy. BENCH_FLAGS adds go test flags (e.g. -count 3, or a -bench
# pattern after the default one); see BENCHMARKS.md.
RCLONE_VERSION := v1.76.0
RCLONE := $(GOBIN)/rclone
BENCH ?= BenchmarkUpload
$(RCLONE):
	GOFLAGS=-mod=mod $(GO) install github.com/rclone/rclone@$(RCLONE_VERSION)
bench: test-servers $(RCLONE)
	FERRY_VERSITYGW=$(VERSITYGW) FERRY_RCLONE=$(RCLONE) $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime 1x -timeout 60m $(BENCH_FLAGS) ./cmd/ferry

# The long kill -9 run (100 kills); the short one (20) is part of make test.
CRASH_KILLS ?= 100
CRASH_SEED ?= 1
crash-long: test-servers
	FERRY_VERSITYGW=$(VERSITYGW) FERRY_CRASH_KILLS=$(CRASH_KILLS) FERRY_CRASH_SEED=$(CRASH_SEED) \
		$(GO) test -run '^TestCrashKill9$$' -count 1 -v -timeout 30m ./cmd/ferry

clean:
	rm -f ferry
	rm -rf dist
