package clienttest

import (
	"slices"
	"testing"
)

func TestParseResultLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []metric
		ok   bool
	}{
		{"figures", "BenchmarkRealSwarm1M-2   \t       1\t5123456789 ns/op\t  38.5 seek-p50-ms\t 120 MB/s\t 12 B/op\t 3 allocs/op",
			[]metric{{5123456789, "ns/op"}, {38.5, "seek-p50-ms"}}, true},
		{"odd fields", "BenchmarkX 1 2 ns/op 3", nil, false},
		{"bad value", "BenchmarkX 1 x ns/op", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseResultLine(tc.line)
			if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
				t.Errorf("parseResultLine(%q) = %v, %v; want %v, ok=%v", tc.line, got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestIsResultLine(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"BenchmarkReal-2 \t 1\t 5 ns/op", true},
		{"BenchmarkReal \t 1\t 5 ns/op", true},
		{"BenchmarkRealer-2 \t 1\t 5 ns/op", false},
		{"BenchmarkReal-x \t 1\t 5 ns/op", false},
		{"    realbench_test.go:10: BenchmarkReal 1 2 3", false},
	}
	for _, tc := range tests {
		if got := isResultLine(tc.line, "BenchmarkReal"); got != tc.want {
			t.Errorf("isResultLine(%q) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

func TestScrapeComplete(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei2e10:downloadedi0e10:incompletei1eeee", 2},
		{"d5:filesdee", 0},
		{"d8:completeixe", 0},
	}
	for _, tc := range tests {
		if got := scrapeComplete([]byte(tc.body)); got != tc.want {
			t.Errorf("scrapeComplete(%q) = %d, want %d", tc.body, got, tc.want)
		}
	}
}
