package daemon

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// scrape fetches /metrics and parses it with Prometheus's own text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d, %v", resp.StatusCode, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the family's metric whose labels match kv.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, kv ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(kv); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("/metrics has no %s%v", name, kv)
	return 0
}

// The counters move with a real stream from a loopback seeder: bytes,
// tasks, unauthorized requests, seek first-byte times; no label or value
// carries a token, URL, file name or address.
func TestMetricsMoveWithAStream(t *testing.T) {
	dir := t.TempDir()
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "secret-title.mp4", 3<<20, 7)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	info := seeder.Add(t, src)

	cfg := testConfig(t, dir)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.Metrics.Listen = addr
	r := startDaemon(t, cfg, nil)

	before := scrape(t, addr)
	if got := value(t, before, "torrentclaw_downloaded_bytes_total"); got != 0 {
		t.Errorf("downloaded bytes before any task = %v, want 0", got)
	}
	for _, st := range []string{"queued", "resolving", "downloading", "paused", "seeding", "completed", "failed"} {
		if got := value(t, before, "torrentclaw_tasks", "status", st); got != 0 {
			t.Errorf("tasks{status=%q} = %v before any task", st, got)
		}
	}

	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: info.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask() error = %v", err)
	}
	// A seek first (the middle of the file), then the whole file.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, add.StreamURL, nil)
	req.Header.Set("Range", "bytes=1500000-1600000")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("seek = %d, %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if code, body := get(t, add.StreamURL); code != http.StatusOK || sha(body) != sum {
		t.Fatalf("GET stream = %d (sha ok %v)", code, sha(body) == sum)
	}
	for range 3 { // wrong tokens: the standard 404, counted
		if code, _ := get(t, strings.Split(add.StreamURL, "&t=")[0]+"&t="+strings.Repeat("a", 64)); code != http.StatusNotFound {
			t.Fatalf("wrong token = %d, want 404", code)
		}
	}

	after := scrape(t, addr)
	if got := value(t, after, "torrentclaw_downloaded_bytes_total"); got < 3<<20 {
		t.Errorf("downloaded bytes after a 3 MiB stream = %v, want at least %d", got, 3<<20)
	}
	if got := value(t, after, "torrentclaw_media_not_found_total"); got < 3 {
		t.Errorf("media_not_found_total = %v, want at least 3", got)
	}
	if got := value(t, after, "torrentclaw_seek_first_byte_seconds"); got != 1 {
		t.Errorf("seek_first_byte_seconds count = %v, want 1 (one seek)", got)
	}
	done := value(t, after, "torrentclaw_tasks", "status", "seeding") + value(t, after, "torrentclaw_tasks", "status", "completed") +
		value(t, after, "torrentclaw_tasks", "status", "downloading")
	if done != 1 {
		t.Errorf("tasks = %v over downloading/seeding/completed, want 1", done)
	}
	for _, name := range []string{"torrentclaw_uploaded_bytes_total", "torrentclaw_peers", "torrentclaw_media_readers",
		"torrentclaw_media_unavailable_total", "torrentclaw_hls_sessions", "torrentclaw_ffmpeg_restarts_total", "torrentclaw_reader_wait_seconds_total"} {
		_ = value(t, after, name) // present
	}

	// Nothing identifying in the exposition.
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, secret := range []string{add.Token.Reveal(), add.TaskID, "secret-title", "127.0.0.1", "/stream?", "t="} {
		if strings.Contains(string(text), secret) {
			t.Errorf("/metrics contains %q", secret)
		}
	}
}
