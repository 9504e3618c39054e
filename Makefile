# torrentclaw — see README.md.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.0
BENCH_COUNT ?= 1

.PHONY: build test bench demo lint fuzz clean

build:
	$(GO) build -o torrentclaw ./cmd/torrentclaw

# The command CI runs (.ci/run): every test, with the race detector.
test:
	$(GO) test -race -count=1 -timeout 15m ./...

# Benchmarks are never run by CI: they measure, tests assert.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -count $(BENCH_COUNT) -timeout 60m ./internal/engine/ ./internal/media/ ./internal/hls/ ./internal/token/

demo: build
	./torrentclaw demo

lint:
	test -z "$$(gofmt -l .)" || (gofmt -l . && false)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzVerify -fuzztime 30s ./internal/token/

clean:
	rm -f torrentclaw
