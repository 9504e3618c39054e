package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
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
}

// Intervals are the origin loop's timings.
type Intervals struct {
	Sync, Watching, BackoffBase, BackoffMax, SSELiveness time.Duration
}

// Daemon is one torrentclaw daemon process: engine, token table, HLS
// sessions, media and control listeners, origin loop and UPnP.
type Daemon struct {
	cfg     config.Config
	version string
	log     *slog.Logger
	opts    Options

	ready     chan struct{}
	startedAt time.Time

	tokens   *token.Table
	internal *token.Table

	// Set during Run, before ready is closed; read-only after.
	eng      *engine.Engine
	hlsm     *hls.Manager
	media    *media.Server
	mediaLn  net.Listener
	tlsLn    net.Listener
	ctrlLn   net.Listener
	mediaAP  netip.AddrPort
	tlsPort  int
	origin   *originLink
	upnp     *upnpLink
	hlsError error

	// mu guards addrs, tasks, internalToks and agentID.
	mu           sync.Mutex
	addrs        netaddr.Addresses
	tasks        map[string]*taskRecord
	internalToks map[string]token.Token
	agentID      string

	// reloadMu serialises Reload; live is the config as last reloaded
	// (nil: cfg).
	reloadMu sync.Mutex
	live     *config.Config

	// saveMu serialises state file writes.
	saveMu sync.Mutex

	// bg tracks goroutines started by request handlers (session-ready
	// reports); Run waits for them.
	bg sync.WaitGroup
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
		tasks:   map[string]*taskRecord{},

		internalToks: map[string]token.Token{},
		tokens: token.New(token.Options{
			TTL:          cfg.Stream.TokenTTL.Std(),
			Grace:        graceOption(cfg.Stream.TokenGrace.Std()),
			RequireToken: cfg.Stream.RequireStreamToken,
		}),
		// Internal tokens let ffmpeg read /stream on loopback; they are never
		// shown to anyone and die with their task.
		internal: token.New(token.Options{TTL: 365 * 24 * time.Hour, Grace: -1, RequireToken: true}),
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

func (d *Daemon) statePath() string { return filepath.Join(d.cfg.Torrent.DataDir, "state.json") }

// Run starts every component, serves until ctx is done, then shuts down in
// reverse order. It returns nil on a clean shutdown.
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
	d.ctrlLn, err = control.Listen(d.SocketPath())
	if err != nil {
		return err
	}
	defer func() { _ = d.ctrlLn.Close() }()

	st, err := loadState(d.statePath())
	if err != nil {
		return err
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
		ListenHost:        torrentListenHost(cfg.Stream.Listen),
		ListenPort:        cfg.Torrent.ListenPort,
		DisableDHT:        !cfg.Torrent.DHT,
		Trackers:          cfg.Torrent.Trackers,
		Seed:              cfg.Torrent.Seed,
		SeedRatio:         cfg.Torrent.SeedRatio,
		UploadRateBytes:   int64(cfg.Torrent.UploadRate),
		DownloadRateBytes: int64(cfg.Torrent.DownloadRate),
		MaxActive:         cfg.Torrent.MaxActive,
		MaxFiles:          cfg.Torrent.MaxFiles,
		MaxNameBytes:      int64(cfg.Torrent.MaxNameBytes),
		WarmGrace:         2 * time.Minute,
		Logger:            d.log,
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

	d.media, err = media.New(media.Options{
		Engine:       d.eng,
		Tokens:       d.tokens,
		Internal:     d.internal,
		HLS:          d.hlsm,
		WatchSession: d.watchSession,
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

	d.restore(ctx, st)

	ctrl, err := control.New(control.Options{Backend: d, Logger: d.log})
	if err != nil {
		return fmt.Errorf("start control socket: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
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
	if cfg.UPnP.Enabled {
		d.upnp = newUPnPLink(d)
		g.Go(func() error { d.upnp.run(gctx); return nil })
	}
	if cfg.Origin.APIURL != "" {
		d.origin, err = newOriginLink(d, st.AgentID)
		if err != nil {
			return err
		}
		g.Go(func() error { return d.origin.run(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		d.bg.Wait()
		return nil
	})
	d.log.Info("daemon started", "media", d.mediaLn.Addr().String(), "torrent_port", d.eng.ListenAddr().Port(),
		"tasks", len(st.Tasks), "version", d.version)
	close(d.ready)

	err = g.Wait()
	if saveErr := d.save(); saveErr != nil {
		err = errors.Join(err, saveErr)
	}
	d.log.Info("daemon stopped")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
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

// torrentListenHost keeps the BitTorrent listener on loopback when the media
// listener is loopback-only (tests, demo); otherwise all interfaces.
func torrentListenHost(streamListen string) string {
	if netaddr.IsLoopbackListen(streamListen) {
		return "127.0.0.1"
	}
	return ""
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

// save writes the state file from the current tasks and token hashes.
func (d *Daemon) save() error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.mu.Lock()
	st := state{AgentID: d.agentID}
	for _, t := range d.tasks {
		st.Tasks = append(st.Tasks, *t)
	}
	d.mu.Unlock()
	st.Tokens = d.tokens.Export()
	if err := saveState(d.statePath(), st); err != nil {
		d.log.Error("state not saved", "err", err)
		return err
	}
	return nil
}

// restore adds the tasks of a previous run again and restores their token
// hashes. A task that cannot be added is logged and dropped.
func (d *Daemon) restore(ctx context.Context, st state) {
	if skipped := d.tokens.Import(st.Tokens); skipped > 0 {
		d.log.Warn("token records skipped", "count", skipped)
	}
	d.mu.Lock()
	d.agentID = st.AgentID
	d.mu.Unlock()
	for _, rec := range st.Tasks {
		if rec.SeedPath != "" {
			// Hashing a large file takes a while: seed again in the
			// background so the listeners come up at once.
			d.bg.Go(func() {
				if _, err := d.seed(ctx, rec.SeedPath); err != nil {
					d.log.Warn("seed not restored", "path", rec.SeedPath, "err", err)
				}
			})
			continue
		}
		if _, err := d.addTask(ctx, rec); err != nil {
			d.log.Warn("task not restored", "task", rec.ID, "err", err)
			continue
		}
		if rec.Paused {
			if err := d.eng.Pause(rec.ID); err != nil {
				d.log.Warn("task not paused", "task", rec.ID, "err", err)
			}
		}
	}
}

// addTask adds rec to the engine and the task table (not the state file).
func (d *Daemon) addTask(ctx context.Context, rec taskRecord) (*engine.Task, error) {
	t, err := d.eng.Add(ctx, engine.AddSpec{
		ID:        rec.ID,
		Source:    rec.Source,
		FileIndex: rec.FileIndex,
		Title:     rec.Title,
		Stream:    rec.Stream,
		Remote:    rec.FromOrig, // the origin may not name local files
	})
	if err != nil {
		return nil, err
	}
	rec.ID = t.ID()
	if rec.AddedAt.IsZero() {
		rec.AddedAt = time.Now().UTC()
	}
	rec.InfoHash = t.InfoHash()
	d.mu.Lock()
	d.tasks[rec.ID] = &rec
	d.mu.Unlock()
	return t, nil
}

// removeTask removes a task everywhere: HLS sessions, tokens, engine, state.
func (d *Daemon) removeTask(id string, deleteFiles bool) error {
	d.hlsm.CloseTask(id)
	d.tokens.Revoke(id)
	d.internal.Revoke(id)
	err := d.eng.Remove(id, deleteFiles)
	d.mu.Lock()
	delete(d.internalToks, id)
	_, known := d.tasks[id]
	delete(d.tasks, id)
	d.mu.Unlock()
	if known && errors.Is(err, engine.ErrNotFound) {
		err = nil
	}
	if err != nil {
		return err
	}
	return d.save()
}

func (d *Daemon) setPaused(id string, paused bool) error {
	var err error
	if paused {
		err = d.eng.Pause(id)
	} else {
		err = d.eng.Resume(id)
	}
	if err != nil {
		return err
	}
	d.mu.Lock()
	if rec, ok := d.tasks[id]; ok {
		rec.Paused = paused
	}
	d.mu.Unlock()
	return d.save()
}

// setToken installs a token for a task and persists its hash.
func (d *Daemon) setToken(taskID string, tok token.Token, expiresAt time.Time) error {
	if err := d.tokens.Grant(taskID, tok, token.IssuerOrigin, token.TaskScope(), expiresAt); err != nil {
		return err
	}
	return d.save()
}

// clearToken forgets a task's token and closes its HLS sessions, whose URLs
// carried it.
func (d *Daemon) clearToken(taskID string) error {
	d.tokens.Revoke(taskID)
	d.hlsm.CloseTask(taskID)
	return d.save()
}

// createHLS starts an HLS session for a task's file; ffmpeg reads the file
// through the media listener on loopback with an internal token.
func (d *Daemon) createHLS(ctx context.Context, sessionID, taskID string, fileIndex int, startSec float64) (*hls.Session, error) {
	return d.createHLSWith(ctx, sessionID, taskID, fileIndex, startSec, hlsOptions{})
}

// hlsOptions are a session's track choices and, for the player page, the
// key under which an open session is reused.
type hlsOptions struct {
	tracks hls.TrackOptions
	key    string
}

// createHLSWith is createHLS with track options. Subtitle files of the
// torrent that belong to the file (hls.FindSidecars) become subtitle
// renditions, read like the file itself.
func (d *Daemon) createHLSWith(ctx context.Context, sessionID, taskID string, fileIndex int, startSec float64, o hlsOptions) (*hls.Session, error) {
	if d.hlsError != nil {
		return nil, d.hlsError
	}
	t, err := d.eng.Task(taskID)
	if err != nil {
		return nil, err
	}
	if fileIndex < 0 {
		if err := t.WaitInfo(ctx); err != nil {
			return nil, err
		}
		fileIndex = t.SelectedFile()
	}
	tok, err := d.internalToken(taskID)
	if err != nil {
		return nil, err
	}
	in := media.InternalStreamURL(d.loopbackMediaAddr(), taskID, tok, fileIndex)
	files := t.Files()
	paths := make([]string, len(files))
	video := ""
	for i, f := range files {
		paths[i] = f.Path
		if f.Index == fileIndex {
			video = f.Path
		}
	}
	var sidecars []hls.SidecarInput
	for _, sc := range hls.FindSidecars(video, paths) {
		sidecars = append(sidecars, hls.SidecarInput{
			InputURL: media.InternalStreamURL(d.loopbackMediaAddr(), taskID, tok, files[sc.Index].Index),
			Language: sc.Language, Label: sc.Label, Format: sc.Format,
		})
	}
	s, err := d.hlsm.Create(ctx, hls.Spec{ID: sessionID, TaskID: taskID, InputURL: in, StartSec: startSec,
		Sidecars: sidecars, Tracks: o.tracks, Key: o.key})
	if err != nil {
		return nil, err
	}
	if fileIndex == t.SelectedFile() {
		d.bg.Go(func() { d.hintBitrate(ctx, t, s, fileIndex) })
	}
	return s, nil
}

// watchSession returns the HLS session of the /watch page for a task's
// file and the token the page was opened with: one per (task, file,
// token), reused while open, so reloading the page adds no session.
func (d *Daemon) watchSession(ctx context.Context, taskID string, fileIndex int, tok token.Token) (*hls.Session, error) {
	sum := sha256.Sum256([]byte(tok.Reveal()))
	key := "watch/" + taskID + "/" + strconv.Itoa(fileIndex) + "/" + hex.EncodeToString(sum[:16])
	return d.createHLSWith(ctx, "", taskID, fileIndex, 0, hlsOptions{key: key})
}

// hintBitrate tells the engine the file's bitrate once the HLS probe knows
// its duration, so stream readers size their readahead to the playback rate
// instead of a fixed default. The wait ends when the session is ready or
// closed (the HLS manager closes every session at shutdown).
func (d *Daemon) hintBitrate(ctx context.Context, t *engine.Task, s *hls.Session, fileIndex int) {
	if err := s.WaitReady(context.WithoutCancel(ctx)); err != nil {
		return
	}
	dur := s.Info().Duration
	for _, f := range t.Files() {
		if f.Index == fileIndex && dur > 0 {
			t.SetBitrate(int64(float64(f.Length*8) / dur))
		}
	}
}

// internalToken returns the task's internal token, minting it on first use.
// ffmpeg needs the plain token in its input URL, so the daemon keeps it in
// memory (never on disk, never in a log) until the task goes away.
func (d *Daemon) internalToken(taskID string) (token.Token, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if tok, ok := d.internalToks[taskID]; ok && d.internal.Info(taskID).Grants > 0 {
		return tok, nil
	}
	tok, err := token.Mint()
	if err != nil {
		return "", err
	}
	if err := d.internal.Grant(taskID, tok, token.IssuerInternal, token.TaskScope(), time.Time{}); err != nil {
		return "", err
	}
	d.internalToks[taskID] = tok
	return tok, nil
}

// loopbackMediaAddr is where ffmpeg reaches the media listener.
func (d *Daemon) loopbackMediaAddr() netip.AddrPort {
	a := d.mediaAP.Addr()
	if a.IsUnspecified() || !a.IsValid() {
		if a.Is6() && !a.Is4In6() {
			a = netip.IPv6Loopback()
		} else {
			a = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	}
	return netip.AddrPortFrom(a, d.mediaAP.Port())
}

// seed makes a torrent of path, seeds it and records it so a restart seeds
// it again.
func (d *Daemon) seed(ctx context.Context, path string) (engine.SeedInfo, error) {
	si, err := d.eng.Seed(ctx, path)
	if err != nil {
		return si, err
	}
	d.mu.Lock()
	d.tasks[si.TaskID] = &taskRecord{ID: si.TaskID, SeedPath: path, InfoHash: si.InfoHash, FileIndex: -1, AddedAt: time.Now().UTC()}
	d.mu.Unlock()
	return si, d.save()
}
