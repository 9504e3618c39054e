package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The snapshot's values and the seek histogram come out under their names,
// parseable by Prometheus's text parser; Serve stops cleanly.
func TestServeSnapshot(t *testing.T) {
	m, err := New(Options{Snapshot: func() Snapshot {
		return Snapshot{TasksByStatus: map[string]int{"downloading": 2}, BytesDown: 1234, Peers: 3, NotFound: 5, ReaderWait: 1500 * time.Millisecond}
	}})
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveSeekFirstByte(300 * time.Millisecond)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { done <- m.Serve(ctx, ln) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	checks := map[string]float64{
		"torrentclaw_downloaded_bytes_total":    1234,
		"torrentclaw_peers":                     3,
		"torrentclaw_media_not_found_total":     5,
		"torrentclaw_reader_wait_seconds_total": 1.5,
	}
	for name, want := range checks {
		f := fams[name]
		if f == nil {
			t.Errorf("no %s", name)
			continue
		}
		m0 := f.GetMetric()[0]
		got := m0.GetCounter().GetValue() + m0.GetGauge().GetValue()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if h := fams["torrentclaw_seek_first_byte_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 || h.GetSampleSum() != 0.3 {
		t.Errorf("seek histogram = %d samples, sum %v; want 1, 0.3", h.GetSampleCount(), h.GetSampleSum())
	}
	if n := len(fams["torrentclaw_tasks"].GetMetric()); n != len(Statuses) {
		t.Errorf("torrentclaw_tasks has %d series, want one per status (%d)", n, len(Statuses))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve() = %v after cancel, want nil", err)
	}
}
