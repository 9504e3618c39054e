package clienttest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// IsolateBench is [Isolate] for a benchmark. Called in the benchmark process it re-executes
// the test binary for just this benchmark (-test.bench=^Name$, -test.benchtime=1x, no tests)
// in a new network namespace holding only lo, relays the child's output, reports the
// child's figures (every unit of its result line, ns/op included) as its own, and returns
// false: the caller returns at once. Called in that child it brings lo up and returns true:
// the benchmark body runs there, with every client and engine it starts.
//
// It skips (or fails, with TORRENTCLAW_E2E=required) when namespaces cannot be made. Call it
// first, from a top-level benchmark.
func IsolateBench(b *testing.B) bool {
	b.Helper()
	if inNamespace(b) {
		return true
	}
	if strings.Contains(b.Name(), "/") {
		b.Fatalf("clienttest.IsolateBench(%s): call it from a top-level benchmark", b.Name())
	}
	args := withSetFlags([]string{"-test.run=^$", "-test.bench=^" + regexp.QuoteMeta(b.Name()) + "$",
		"-test.benchtime=1x", "-test.count=1", "-test.v=true"}, "test.timeout", "test.cpu")
	var result string // the child's result line
	out, err := reexec(b, "benchmark", args, func(line string) {
		if isResultLine(line, b.Name()) {
			result = line
			return
		}
		// Straight to stdout: a benchmark's own output appears only when it ends, and
		// one round of these takes minutes.
		fmt.Println("    " + line)
	})
	switch {
	case strings.Contains(out, "--- SKIP: "+b.Name()):
		b.Skipf("clienttest: %s was skipped inside its network namespace (see above)", b.Name())
	case err != nil:
		b.Fatalf("clienttest: %s in a network namespace: %v", b.Name(), err)
	case result == "":
		b.Fatalf("clienttest: %s printed no result inside its network namespace", b.Name())
	}
	metrics, perr := parseResultLine(result)
	if perr != nil {
		b.Fatalf("clienttest: %s: %v", b.Name(), perr)
	}
	for _, m := range metrics {
		b.ReportMetric(m.value, m.unit)
	}
	return false
}

// isResultLine reports whether line is the result line of benchmark name: the name (with
// an optional -GOMAXPROCS suffix), then the iteration count.
func isResultLine(line, name string) bool {
	f := strings.Fields(line)
	if len(f) < 4 {
		return false
	}
	base, procs, ok := strings.Cut(f[0], "-")
	if base != name {
		return false
	}
	if ok {
		if _, err := strconv.Atoi(procs); err != nil {
			return false
		}
	}
	_, err := strconv.Atoi(f[1])
	return err == nil
}

type metric struct {
	value float64
	unit  string
}

// parseResultLine returns the value-unit pairs of a benchmark result line, except the
// allocation counters (the parent does not measure them).
func parseResultLine(line string) ([]metric, error) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 {
		return nil, fmt.Errorf("malformed benchmark result line %q", line)
	}
	var out []metric
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("benchmark result line %q: value %q: %v", line, f[i], err)
		}
		if f[i+1] == "B/op" || f[i+1] == "allocs/op" || f[i+1] == "MB/s" {
			// MB/s comes from SetBytes, which the parent cannot set after the fact; the
			// benchmarks report their own throughput units.
			continue
		}
		out = append(out, metric{v, f[i+1]})
	}
	return out, nil
}

// Seeders returns how many seeders the tracker lists for the infohash ih (hex), from a
// scrape: a benchmark waits for a client's announce before it starts a clock.
func (tr *Tracker) Seeders(t testing.TB, ih string) int {
	t.Helper()
	raw, err := hex.DecodeString(ih)
	if err != nil || len(raw) != 20 {
		t.Fatalf("tracker: infohash %q: want 40 hex digits", ih)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/scrape?info_hash=%s", tr.port, url.QueryEscape(string(raw))))
	if err != nil {
		t.Fatalf("tracker scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if err != nil {
		t.Fatalf("tracker scrape: %v", err)
	}
	return scrapeComplete(body)
}

// scrapeComplete returns the "complete" count of a one-torrent bencoded scrape answer, 0
// when it has none.
func scrapeComplete(body []byte) int {
	_, rest, ok := bytes.Cut(body, []byte("8:completei"))
	if !ok {
		return 0
	}
	num, _, ok := bytes.Cut(rest, []byte("e"))
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(string(num))
	if err != nil {
		return 0
	}
	return n
}
