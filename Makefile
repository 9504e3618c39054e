# torrentclaw — see README.md.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.0
BENCH_COUNT ?= 3

.PHONY: build test test-loaded bench demo lint fuzz clean release

build:
	$(GO) build -o torrentclaw ./cmd/torrentclaw

# The command CI runs (.ci/run): every test, with the race detector.
test:
	$(GO) test -race -count=1 -timeout 15m ./...

# The whole suite on a busy machine: a stress(1) CPU hog on every core while the tests run
# with -race, LOADED_RUNS times in a row, stopping at the first failure (docs/testing.md,
# "Tests on a busy machine"). The hogs run in their own process group, killed on exit;
# LOADED_TIMEOUT is stress's own limit, in case this shell is killed first.
LOADED_RUNS    ?= 3
LOADED_TIMEOUT ?= 4h
test-loaded:
	@command -v stress >/dev/null || { echo "test-loaded: stress(1) is missing (apt-get install stress)" >&2; exit 1; }
	@n=$$(nproc); setsid stress --cpu $$n --quiet --timeout $(LOADED_TIMEOUT) </dev/null >/dev/null 2>&1 & hog=$$!; \
	trap 'kill -TERM -'$$hog' 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	echo "== $$n CPU hogs (stress, process group $$hog)"; \
	for i in $$(seq $(LOADED_RUNS)); do \
		echo "== loaded run $$i of $(LOADED_RUNS)"; \
		$(GO) test -race -count=1 -timeout 45m ./... || exit 1; \
	done

# Benchmarks are never run by CI: they measure, tests assert. The swarm benchmarks (a
# 256 MiB file from four rate-limited loopback seeders) run once per count, a few minutes
# each; the microbenchmarks run for the usual benchtime. Results: docs/benchmarks.md.
bench:
	$(GO) test -p 1 -run '^$$' -bench '^BenchmarkStream(Swarm)?$$' -benchtime 1x -count $(BENCH_COUNT) -timeout 60m ./internal/engine/ ./internal/media/
	$(GO) test -p 1 -run '^$$' -bench '^Benchmark(RangeRequest|Playlist)$$' -count $(BENCH_COUNT) -timeout 30m ./internal/media/
	$(GO) test -p 1 -run '^$$' -bench . -count $(BENCH_COUNT) -timeout 30m ./internal/hls/ ./internal/token/
	$(GO) test -p 1 -run '^$$' -bench '^BenchmarkHLSFromSeeder$$' -benchtime 1x -count $(BENCH_COUNT) -timeout 30m ./internal/daemon/
	$(GO) test -p 1 -run '^$$' -bench '^BenchmarkWatch$$' -benchtime 1x -count $(BENCH_COUNT) -timeout 60m ./internal/daemon/
	# qBittorrent may run only in a loopback-only network namespace (needs root).
	unshare -n sh -c "ip link set lo up && $(GO) test -p 1 -run '^$$' -bench '^BenchmarkWatchSwarm$$' -benchtime 1x -count $(BENCH_COUNT) -timeout 60m ./internal/daemon/"
	# The same page in Firefox (firefox-esr), which also runs only in such a namespace.
	unshare -n sh -c "ip link set lo up && TORRENTCLAW_BENCH_BROWSER=firefox $(GO) test -p 1 -run '^$$' -bench '^BenchmarkWatchSwarm$$' -benchtime 1x -count $(BENCH_COUNT) -timeout 60m ./internal/daemon/"
	# Real-client swarms (qbittorrent-nox, transmission-daemon, aria2c, opentracker; root for
	# the network namespaces; a 128 MiB file, TORRENTCLAW_REALBENCH_MB changes it).
	$(GO) test -p 1 -run '^$$' -bench '^BenchmarkReal' -benchtime 1x -count $(BENCH_COUNT) -timeout 60m ./internal/media/

demo: build
	./torrentclaw demo

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . && false)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Every package, tests included, must compile on the other systems the release ships for
# (the real-client tests are Linux's and skip there): vet each one. .ci/run runs it.
.PHONY: vet-cross
CROSS_GOOS ?= darwin windows freebsd
vet-cross:
	@set -e; for os in $(CROSS_GOOS); do \
		echo "== GOOS=$$os go vet ./..."; \
		GOOS=$$os CGO_ENABLED=0 $(GO) vet ./...; \
	done

# Every fuzz target, one after the other (FUZZTIME each). Counts, not seconds, avoid a
# Go fuzz-coordinator race at the end of a timed run (golang/go#75804).
FUZZTIME ?= 200000x
fuzz:
	@set -e; for pkg in $$($(GO) list ./internal/...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# Release binaries in dist/: every platform below, built offline from the module
# cache with -trimpath, the version stamped in, and a SHA256SUMS file. CGO is off
# so one machine builds them all; the torrent library then uses its pure-Go uTP
# instead of the C libutp (anacrolix/torrent picks it by build tag).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
LDFLAGS   := -s -w -X github.com/torrentclaw/cli/internal/cli.version=$(VERSION)
release:
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		out=dist/torrentclaw-$(VERSION)-$$os-$$arch$$ext; \
		echo "== $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOFLAGS=-mod=readonly \
			$(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' -o $$out ./cmd/torrentclaw; \
	done
	cd dist && sha256sum torrentclaw-* > SHA256SUMS

clean:
	rm -f torrentclaw
	rm -rf dist
