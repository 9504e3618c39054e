# torrentclaw — see README.md.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.0
BENCH_COUNT ?= 3

.PHONY: build test bench demo lint fuzz clean

build:
	$(GO) build -o torrentclaw ./cmd/torrentclaw

# The command CI runs (.ci/run): every test, with the race detector.
test:
	$(GO) test -race -count=1 -timeout 15m ./...

# Benchmarks are never run by CI: they measure, tests assert. The swarm benchmarks (a
# 256 MiB file from four rate-limited loopback seeders) run once per count, a few minutes
# each; the microbenchmarks run for the usual benchtime. Results: docs/benchmarks.md.
bench:
	$(GO) test -p 1 -run '^$$' -bench '^BenchmarkStream(Swarm)?$$' -benchtime 1x -count $(BENCH_COUNT) -timeout 60m ./internal/engine/ ./internal/media/
	$(GO) test -p 1 -run '^$$' -bench '^Benchmark(RangeRequest|Playlist)$$' -count $(BENCH_COUNT) -timeout 30m ./internal/media/
	$(GO) test -p 1 -run '^$$' -bench . -count $(BENCH_COUNT) -timeout 30m ./internal/hls/ ./internal/token/
	$(GO) test -p 1 -run '^$$' -bench '^BenchmarkHLSFromSeeder$$' -benchtime 1x -count $(BENCH_COUNT) -timeout 30m ./internal/daemon/

demo: build
	./torrentclaw demo

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . && false)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

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

clean:
	rm -f torrentclaw
