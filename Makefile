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

fuzz:
	$(GO) test -p 1 -run '^$$' -fuzz FuzzVerify -fuzztime 30s ./internal/token/

clean:
	rm -f torrentclaw
