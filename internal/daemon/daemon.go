package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/media"
	"github.com/torrentclaw/cli/internal/netaddr"
	"github.com/torrentclaw/cli/internal/tasks"
	"github.com/torrentclaw/cli/internal/token"
)

// ErrUPnPWithoutTokens is returned when UPnP is on but token-less tasks are
// allowed: that would put an open stream port on the internet.
var ErrUPnPWithoutTokens = errors.New("upnp.enabled requires stream.require_stream_token = true (or --require-stream-token): " +
	"an open stream port on the internet without tokens would let anyone watch your streams")

// ErrPortInUse is wrapped when a listener's port is taken.
var ErrPortInUse = errors.New("port in use")

// Options configure a [Daemon].
type Options struct {
	Config  config.Config
	Version string
	Logger  *slog.Logger
	// LogLevel, when set, is the level of Logger's handler: [Daemon.Reload]
	// changes it.
	LogLevel *slog.LevelVar
	// Sources says where each config value came from (flag, environment,
	// file), so errors such as a busy port name what set it. Nil: the keys.
	Sources config.Sources

	// Intervals shortens the origin loop's timings in tests; zero values
	// mean the protocol's defaults.
	Intervals Intervals

	// UPnP points UPnP at a given gateway in tests; zero in production.
	UPnP UPnPOptions

	// OwnerKey marks a daemon run inside one CLI command (stream): only
	// control requests carrying this key may change anything, so another
	// terminal never leaves tasks in a daemon that stops with that command.
	OwnerKey string

	// inputHook sees every ffmpeg input URL (tests check its grant).
	inputHook func(url string)
}

// Intervals are the origin loop's timings.
type Intervals struct {
	Sync, Watching, BackoffBase, BackoffMax, SSELiveness time.Duration
}

// Daemon is one torrentclaw daemon process: engine, token table, task
// service, HLS sessions, media and control listeners, origin loop and UPnP.
type Daemon struct {
	cfg     config.Config
	version string
	log     *slog.Logger
	opts    Options

	ready     chan struct{}
	startedAt time.Time

	tokens *token.Table

	// Set during Run before the first listener accepts (before ready is
	// closed); read-only after.
	eng      *engine.Engine
	hlsm     *hls.Manager
	svc      *tasks.Service
	media    *media.Server
	mediaLn  net.Listener
	tlsLn    net.Listener
	ctrlLn   net.Listener
	mediaAP  netip.AddrPort
	tlsPort  int
	origin   *originLink
	upnp     *upnpLink
	hlsError error

	// mu guards addrs.
	mu    sync.Mutex
	addrs netaddr.Addresses

	// reloadMu serialises Reload; live is the config as last reloaded
	// (nil: cfg).
	reloadMu sync.Mutex
	live     *config.Config
}

var _ control.Backend = (*Daemon)(nil)

// New checks the configuration and returns a daemon. It starts nothing.
func New(opts Options) (*Daemon, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.UPnP.Enabled && !cfg.Stream.RequireStreamToken {
		return nil, ErrUPnPWithoutTokens
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{
		cfg:     cfg,
		version: opts.Version,
		log:     log,
		opts:    opts,
		ready:   make(chan struct{}),
		tokens: token.New(token.Options{
			TTL:          cfg.Stream.TokenTTL.Std(),
			Grace:        graceOption(cfg.Stream.TokenGrace.Std()),
			RequireToken: cfg.Stream.RequireStreamToken,
		}),
	}
	return d, nil
}

// graceOption maps the config's "0 = no grace" onto token.Options, where 0
// means the default.
func graceOption(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// SocketPath returns where the control socket of a daemon with cfg lives.
func SocketPath(cfg config.Config) string {
	return filepath.Join(cfg.Torrent.DataDir, "control.sock")
}

// SocketPath returns this daemon's control socket path.
func (d *Daemon) SocketPath() string { return SocketPath(d.cfg) }

// Ready is closed once every listener is bound and the engine runs.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// MediaAddr is the media listener's bound address; valid after Ready.
func (d *Daemon) MediaAddr() netip.AddrPort { return d.mediaAP }

// TLSPort is the bound HTTPS media port, 0 when off; valid after Ready.
func (d *Daemon) TLSPort() int { return d.tlsPort }

// Run builds every component, then starts serving: nothing accepts a
// connection before everything a handler reads is set. It serves until ctx
// is done, then shuts down in reverse order and waits for all background
// work. It returns nil on a clean shutdown.
func (d *Daemon) Run(ctx context.Context) (err error) {
	d.startedAt = time.Now()
	cfg := d.cfg
	if err := os.MkdirAll(cfg.Torrent.DataDir, 0o700); err != nil {
		return fmt.Errorf("create torrent.data_dir: %w", err)
	}
	if err := os.MkdirAll(cfg.Torrent.DownloadDir, 0o755); err != nil {
		return fmt.Errorf("create torrent.download_dir: %w", err)
	}

	// Control socket first: it is how we learn another daemon is running.
	// It is bound here and served only once everything is built.
	d.ctrlLn, err = control.Listen(d.SocketPath())
	if err != nil {
		return err
	}
	defer func() { _ = d.ctrlLn.Close() }()

	ld, err := tasks.LoadState(cfg.Torrent.DataDir, time.Now())
	if err != nil {
		return err
	}
	if rc := ld.Recovery; rc.MovedTo != "" {
		d.log.Warn("state file unreadable: moved aside, tasks rebuilt from the saved metainfo",
			"moved_to", rc.MovedTo, "reason", rc.Reason, "tasks", len(ld.Records))
	}
	if ld.RemovedTemps > 0 {
		d.log.Info("removed temporary state files of an interrupted save", "count", ld.RemovedTemps)
	}

	d.mediaLn, err = listenTCP(cfg.Stream.Listen, cfg.Stream.Port, "stream.port", d.opts.Sources.Describe("stream.port"))
	if err != nil {
		return err
	}
	defer func() { _ = d.mediaLn.Close() }()
	d.mediaAP = addrPortOf(d.mediaLn.Addr())
	if cfg.Stream.TLSPort != 0 {
		d.tlsLn, err = listenTCP(cfg.Stream.Listen, cfg.Stream.TLSPort, "stream.tls_port", d.opts.Sources.Describe("stream.tls_port"))
		if err != nil {
			return err
		}
		defer func() { _ = d.tlsLn.Close() }()
		d.tlsPort = int(addrPortOf(d.tlsLn.Addr()).Port())
	}
	if !cfg.Stream.RequireStreamToken && !netaddr.IsLoopbackListen(cfg.Stream.Listen) {
		d.log.Warn("token-less tasks are served to anyone who can reach the media listener; set stream.require_stream_token = true",
			"listen", d.mediaLn.Addr().String())
	}

	// Seed magnets advertise the LAN address (x.pe) so another machine on
	// the network can fetch without DHT or trackers.
	d.refreshAddresses()
	d.eng, err = engine.New(engine.Options{
		AdvertiseAddr:     d.addresses().LAN,
		DownloadDir:       cfg.Torrent.DownloadDir,
		DataDir:           cfg.Torrent.DataDir,
		ListenHost:        cfg.Torrent.ListenAddr, // stream.listen moves only the media listener
		ListenPort:        cfg.Torrent.ListenPort,
		DisableUTP:        !cfg.Torrent.UTP,
		Encryption:        cfg.Torrent.Encryption,
		DisableDHT:        !cfg.Torrent.DHT,
		Trackers:          cfg.Torrent.Trackers,
		Seed:              cfg.Torrent.Seed,
		SeedRatio:         cfg.Torrent.SeedRatio,
		UploadRateBytes:   int64(cfg.Torrent.UploadRate),
		DownloadRateBytes: int64(cfg.Torrent.DownloadRate),
		// torrent.max_active is the task service's queue, not a refusal.
		MaxFiles:     cfg.Torrent.MaxFiles,
		MaxNameBytes: int64(cfg.Torrent.MaxNameBytes),
		WarmGrace:    2 * time.Minute,
		Logger:       d.log,
	})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("torrent.listen_port %d is in use (set by %s; choose another port, or 0 for any free port): %w",
				cfg.Torrent.ListenPort, d.opts.Sources.Describe("torrent.listen_port"), ErrPortInUse)
		}
		return fmt.Errorf("start torrent engine: %w", err)
	}
	defer func() { err = errors.Join(err, d.eng.Close()) }()

	d.hlsm, err = hls.New(hls.Options{
		FFmpegPath:     cfg.HLS.FFmpegPath,
		FFprobePath:    cfg.HLS.FFprobePath,
		Dir:            cfg.HLS.Dir,
		SegmentSeconds: float64(cfg.HLS.SegmentSeconds),
		MaxSessions:    cfg.HLS.MaxSessions,
		// max_transcodes = 0 means "copy only, never re-encode video".
		MaxTranscodes: max(cfg.HLS.MaxTranscodes, 1),
		CopyOnly:      cfg.HLS.MaxTranscodes == 0,
		IdleTimeout:   cfg.HLS.IdleTimeout.Std(),
		MaxDiskBytes:  int64(cfg.HLS.MaxDisk),
		Logger:        d.log,
		// Every closed session ends ffmpeg's input grant. d.svc is set
		// below, before any session can exist.
		OnClose: func(id string) { d.svc.SessionClosed(id) },
	})
	if err != nil {
		return fmt.Errorf("start hls: %w", err)
	}
	if d.hlsError = d.hlsm.Available(); d.hlsError != nil {
		d.log.Warn("hls unavailable", "err", d.hlsError)
	}

	mx, err := d.startMetrics()
	if err != nil {
		return err
	}
	defer mx.close()

	d.svc, err = tasks.New(tasks.Options{
		Engine:    d.eng,
		Tokens:    d.tokens,
		HLS:       d.hlsm,
		HLSError:  d.hlsError,
		DataDir:   cfg.Torrent.DataDir,
		MaxActive: cfg.Torrent.MaxActive,
		TokenTTL:  cfg.Stream.TokenTTL.Std(),
		InputURL:  d.inputURL,
		Logger:    d.log,
	})
	if err != nil {
		return fmt.Errorf("start task service: %w", err)
	}
	// Restored tasks are added on the service's goroutines: the listeners
	// answer at once, whatever the network does.
	d.svc.Restore(ld)

	if cfg.UPnP.Enabled {
		d.upnp = newUPnPLink(d)
	}
	if cfg.Origin.APIURL != "" {
		d.origin, err = newOriginLink(d)
		if err != nil {
			return err
		}
	}
	d.media, err = media.New(media.Options{
		Engine:       d.svc,
		Tokens:       d.tokens,
		HLS:          d.hlsm,
		SessionBound: d.svc.SessionBound,
		Session:      d.svc.Session,
		WatchSession: d.svc.WatchSession,
		CORSOrigins:  d.corsOrigins(),
		MaxReaders:   cfg.Stream.MaxReaders,
		// Connection caps of the media listener (issue 9).
		MaxConns:          cfg.Stream.MaxConns,
		MaxConnsPerClient: cfg.Stream.MaxConnsPerClient,
		PublicHosts:       d.ownHosts,
		Version:           d.version,
		Logger:            d.log,
		TLSCertFile:       cfg.Stream.TLSCertFile,
		TLSKeyFile:        cfg.Stream.TLSKeyFile,

		OnSeekFirstByte: mx.seekObserver(),
	})
	if err != nil {
		return fmt.Errorf("start media listener: %w", err)
	}
	ctrl, err := control.New(control.Options{Backend: d, Logger: d.log, OwnerKey: d.opts.OwnerKey})
	if err != nil {
		return fmt.Errorf("start control socket: %w", err)
	}

	// Everything is built: start serving.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.svc.Run(gctx) })
	g.Go(func() error { return d.media.Serve(gctx, d.mediaLn) })
	if d.tlsLn != nil {
		g.Go(func() error { return d.media.ServeTLS(gctx, d.tlsLn) })
	}
	g.Go(func() error { return ctrl.Serve(gctx, d.ctrlLn) })
	g.Go(func() error { return d.hlsm.Run(gctx) })
	g.Go(func() error { return mx.serve(gctx) })
	g.Go(func() error {
		netaddr.Watch(gctx, netaddr.DefaultWatchInterval, d.setAddresses)
		return nil
	})
	if d.upnp != nil {
		g.Go(func() error { d.upnp.run(gctx); return nil })
	}
	if d.origin != nil {
		g.Go(func() error { return d.origin.run(gctx) })
	}
	d.log.Info("daemon started", "media", d.mediaLn.Addr().String(), "torrent_port", d.eng.ListenAddr().Port(),
		"tasks", len(ld.Records), "version", d.version)
	close(d.ready)

	err = g.Wait()
	// Adds in flight stop; the state file is written a last time.
	err = errors.Join(err, d.svc.Close())
	d.log.Info("daemon stopped")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// inputURL is where ffmpeg reads a task's file for an HLS session: the
// media listener on loopback, with an internal grant scoped to the session
// and the file.
func (d *Daemon) inputURL(taskID, sessionID string, tok token.Token, file int) string {
	u := media.InternalStreamURL(d.mediaAP, taskID, tok, file) + "&s=" + url.QueryEscape(sessionID)
	if d.opts.inputHook != nil {
		d.opts.inputHook(u)
	}
	return u
}

// listenTCP binds host:port, naming the config key and what set it (source,
// see [config.Sources.Describe]) when the port is taken.
func listenTCP(host string, port int, key, source string) (net.Listener, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s: %s is already in use (another torrentclaw or program holds it; set by %s: choose a free port): %w", key, addr, source, ErrPortInUse)
		}
		return nil, fmt.Errorf("%s: listen on %s: %w", key, addr, err)
	}
	return ln, nil
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// refreshAddresses re-reads the LAN and Tailscale addresses.
func (d *Daemon) refreshAddresses() { d.setAddresses(netaddr.Discover()) }

// setAddresses records the machine's addresses and logs changes.
func (d *Daemon) setAddresses(a netaddr.Addresses) {
	d.mu.Lock()
	old := d.addrs
	d.addrs = a
	d.mu.Unlock()
	if old != a {
		d.log.Info("addresses changed", "addresses", a)
	}
}

func (d *Daemon) addresses() netaddr.Addresses {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addrs
}

// ownHosts lists every host under which the media listener is ours, for the
// playlist's Host check.
func (d *Daemon) ownHosts() []string {
	var extra []string
	if h := d.cfg.Stream.PublicHost; h != "" {
		extra = append(extra, h)
	}
	if d.upnp != nil {
		if ip := d.upnp.externalIP(); ip.IsValid() {
			extra = append(extra, ip.String())
		}
	}
	return netaddr.OwnHosts(d.cfg.Stream.Listen, d.addresses(), extra...)
}

// corsOrigins are the origin's scheme+host plus stream.cors_origins.
func (d *Daemon) corsOrigins() []string { return corsOriginsOf(d.cfg) }

// corsOriginsOf are cfg's origin's scheme+host plus stream.cors_origins.
func corsOriginsOf(cfg config.Config) []string {
	var out []string
	if o := originOf(cfg.Origin.APIURL); o != "" {
		out = append(out, o)
	}
	return append(out, cfg.Stream.CORSOrigins...)
}
