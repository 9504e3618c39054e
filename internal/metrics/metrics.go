package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Statuses are the task statuses reported by torrentclaw_tasks, every one
// always present (0 when no task has it) so dashboards see stable series.
var Statuses = []string{"queued", "resolving", "downloading", "paused", "seeding", "completed", "failed"}

// Snapshot is the daemon's state at scrape time. Totals are cumulative
// since the daemon started.
type Snapshot struct {
	// TasksByStatus counts tasks per status (keys from [Statuses]).
	TasksByStatus map[string]int
	// BytesDown and BytesUp are piece data received from and sent to peers.
	BytesDown, BytesUp int64
	// Peers is the number of connected peers over all tasks.
	Peers int
	// MediaReaders is the number of /stream responses reading now.
	MediaReaders int
	// Unavailable counts media responses with status 503 (too many readers,
	// no HLS, paused task, …).
	Unavailable int64
	// NotFound counts media responses with the standard 404: unauthorized,
	// unknown or malformed requests, which the listener does not tell apart
	// on purpose.
	NotFound int64
	// HLSSessions is the number of open HLS sessions.
	HLSSessions int
	// FFmpegRestarts counts ffmpeg processes restarted at a new position
	// (a seek far from the running one).
	FFmpegRestarts int64
	// ReaderWait is the total time stream readers spent waiting for pieces.
	ReaderWait time.Duration
}

// Options configure [New].
type Options struct {
	// Snapshot is called once per scrape. Required.
	Snapshot func() Snapshot
	// Logger; nil discards.
	Logger *slog.Logger
}

// Metrics is the registry and its HTTP handler. It is safe for concurrent
// use.
type Metrics struct {
	reg  *prometheus.Registry
	ttfb prometheus.Histogram
	log  *slog.Logger
}

// New returns a registry with the daemon's metrics plus the Go runtime and
// process collectors. It starts nothing.
func New(opts Options) (*Metrics, error) {
	if opts.Snapshot == nil {
		return nil, errors.New("metrics: Snapshot is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		ttfb: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "torrentclaw_seek_first_byte_seconds",
			Help: "Time from a /stream request that seeks (a Range not starting at 0) to its first body byte.",
			// From a cached piece (ms) to a cold piece from a slow swarm (tens of s).
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30},
		}),
		log: log.With("component", "metrics"),
	}
	for _, c := range []prometheus.Collector{
		m.ttfb,
		&snapshotCollector{snap: opts.Snapshot},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveSeekFirstByte records the time to the first byte of a seek.
func (m *Metrics) ObserveSeekFirstByte(d time.Duration) { m.ttfb.Observe(d.Seconds()) }

// Handler serves GET /metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	return mux
}

// Serve serves [Metrics.Handler] on ln until ctx is done, then shuts down.
// It returns nil on a clean shutdown.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		WriteTimeout:      30 * time.Second, // a scrape is small
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1) // buffered: Serve's result is delivered even after shutdown
	go func() { errc <- srv.Serve(ln) }()
	m.log.Info("metrics listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// snapshotCollector turns one Snapshot per scrape into metrics.
type snapshotCollector struct{ snap func() Snapshot }

var (
	descTasks       = prometheus.NewDesc("torrentclaw_tasks", "Tasks by status.", []string{"status"}, nil)
	descBytesDown   = prometheus.NewDesc("torrentclaw_downloaded_bytes_total", "Piece data received from peers.", nil, nil)
	descBytesUp     = prometheus.NewDesc("torrentclaw_uploaded_bytes_total", "Piece data sent to peers.", nil, nil)
	descPeers       = prometheus.NewDesc("torrentclaw_peers", "Connected peers over all tasks.", nil, nil)
	descReaders     = prometheus.NewDesc("torrentclaw_media_readers", "Open /stream readers.", nil, nil)
	descUnavailable = prometheus.NewDesc("torrentclaw_media_unavailable_total", "Media responses with status 503.", nil, nil)
	descNotFound    = prometheus.NewDesc("torrentclaw_media_not_found_total",
		"Media responses with the standard 404 (unauthorized, unknown or malformed requests alike).", nil, nil)
	descHLS      = prometheus.NewDesc("torrentclaw_hls_sessions", "Open HLS sessions.", nil, nil)
	descRestarts = prometheus.NewDesc("torrentclaw_ffmpeg_restarts_total", "ffmpeg restarts at a new position (seeks).", nil, nil)
	descWait     = prometheus.NewDesc("torrentclaw_reader_wait_seconds_total", "Time stream readers spent waiting for pieces.", nil, nil)
)

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTasks, descBytesDown, descBytesUp, descPeers, descReaders,
		descUnavailable, descNotFound, descHLS, descRestarts, descWait} {
		ch <- d
	}
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	for _, st := range Statuses {
		ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(s.TasksByStatus[st]), st)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter(descBytesDown, float64(s.BytesDown))
	counter(descBytesUp, float64(s.BytesUp))
	gauge(descPeers, float64(s.Peers))
	gauge(descReaders, float64(s.MediaReaders))
	counter(descUnavailable, float64(s.Unavailable))
	counter(descNotFound, float64(s.NotFound))
	gauge(descHLS, float64(s.HLSSessions))
	counter(descRestarts, float64(s.FFmpegRestarts))
	counter(descWait, s.ReaderWait.Seconds())
}
