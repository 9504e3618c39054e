package daemon

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/torrentclaw/cli/internal/metrics"
)

// metricsLink is the daemon's metrics registry and listener; nil when
// metrics.listen is empty.
type metricsLink struct {
	m  *metrics.Metrics
	ln net.Listener
}

// startMetrics binds metrics.listen and builds the registry; it reads the
// engine, media listener and HLS manager only when scraped, after Ready.
func (d *Daemon) startMetrics() (*metricsLink, error) {
	addr := d.cfg.Metrics.Listen
	if addr == "" {
		return nil, nil
	}
	m, err := metrics.New(metrics.Options{Snapshot: d.metricsSnapshot, Logger: d.log})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: listen on %s (set by %s): %w", addr, d.opts.Sources.Describe("metrics.listen"), err)
	}
	return &metricsLink{m: m, ln: ln}, nil
}

// seekObserver is media's OnSeekFirstByte: nil without metrics.
func (l *metricsLink) seekObserver() func(time.Duration) {
	if l == nil {
		return nil
	}
	return l.m.ObserveSeekFirstByte
}

func (l *metricsLink) serve(ctx context.Context) error {
	if l == nil {
		return nil
	}
	return l.m.Serve(ctx, l.ln)
}

func (l *metricsLink) close() {
	if l != nil {
		_ = l.ln.Close() // Serve closes it too; this covers a start that failed before Serve
	}
}

// metricsSnapshot reads every component once for a scrape.
func (d *Daemon) metricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{TasksByStatus: map[string]int{}}
	if d.eng == nil || d.media == nil || d.hlsm == nil {
		return s // scraped before the daemon was ready
	}
	for _, st := range d.eng.Tasks() {
		s.TasksByStatus[string(st.State)]++
	}
	es := d.eng.Stats()
	s.BytesDown, s.BytesUp, s.Peers, s.ReaderWait = es.BytesDown, es.BytesUp, es.Peers, es.ReaderWait
	ms := d.media.Stats()
	s.MediaReaders, s.NotFound, s.Unavailable = ms.Readers, ms.NotFound, ms.Unavailable
	hs := d.hlsm.Stats()
	s.HLSSessions, s.FFmpegRestarts = hs.Sessions, hs.Restarts
	return s
}
