package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"github.com/google/uuid"
	"golang.org/x/time/rate"

	// Plain file I/O instead of memory maps; see the package doc.
	_ "github.com/torrentclaw/cli/internal/engine/classicio"
)

// Options configures an [Engine].
type Options struct {
	// DownloadDir receives the data of added torrents. Required.
	DownloadDir string
	// DataDir holds the piece-completion database and the metainfo cache
	// (DataDir/torrents/<infohash>.torrent). Required; one engine at a time per DataDir.
	DataDir string

	// ListenHost is the IP address to listen on for BitTorrent; "" means all addresses.
	ListenHost string
	// ListenPort is the BitTorrent port; 0 picks a free one (see [Engine.ListenAddr]).
	ListenPort int
	// AdvertiseAddr is the address put in the x.pe of magnets made by [Engine.Seed] when
	// ListenHost is unspecified (typically the LAN address). When neither is set, x.pe
	// uses 127.0.0.1, which only works for peers on this machine.
	AdvertiseAddr netip.Addr

	DisableDHT      bool
	DisableTrackers bool
	// DisableLSD is accepted for configuration compatibility; the torrent library has no
	// Local Service Discovery, so it has no effect.
	DisableLSD bool
	DisableUTP bool
	// Encryption is the protocol-encryption policy: "" or "plaintext-first", "prefer",
	// "require" (config torrent.encryption).
	Encryption string
	// Trackers are announce URLs added to every torrent (unless DisableTrackers).
	Trackers []string

	// Seed keeps uploading a downloaded torrent after it completes, until SeedRatio
	// (uploaded / size; 0 = no limit) is reached. Torrents made by [Engine.Seed] always seed.
	Seed      bool
	SeedRatio float64

	// UploadRateBytes and DownloadRateBytes limit the engine's transfer rates in bytes per
	// second; 0 means unlimited.
	UploadRateBytes, DownloadRateBytes int64

	// MaxActive caps the tasks downloading at once (not paused, failed, complete or seeding);
	// [Engine.Add] returns [ErrTooManyTasks] beyond it. 0 means no cap.
	MaxActive int

	// WarmGrace is how long a stream task keeps downloading after its last reader closes.
	// After that it idles (Status.Idle) until a reader opens again. 0 means never idle.
	WarmGrace time.Duration

	// FetchTimeout bounds downloading a .torrent from an http(s) URL; default 30s.
	FetchTimeout time.Duration

	// MaxFiles and MaxNameBytes bound a torrent's metainfo: its number of files and the total
	// bytes of its file names (see bounds.go). 0 means DefaultMaxFiles, DefaultMaxNameBytes.
	MaxFiles     int
	MaxNameBytes int64

	// StoreRetryMin is the first wait before a task stopped by a storage error (a full disk)
	// retries by itself; each failed retry doubles it, up to 5 minutes. A full disk is retried
	// only once a piece fits again. 0 means DefaultStoreRetryMin.
	StoreRetryMin time.Duration

	// VerifyRateBytes paces the background verification of pieces whose files may have
	// changed since they were verified (bytes read per second, see integrity.go); 0 means
	// DefaultVerifyRateBytes, negative means unpaced.
	VerifyRateBytes int64

	Logger *slog.Logger
}

// Defaults and limits.
const (
	defaultFetchTimeout = 30 * time.Second
	maintainInterval    = time.Second
	maxPeerRequestData  = 1024 * 16 << 10
	writerWakeInterval  = 6 * time.Second // see cfg.KeepAliveTimeout
)

// Engine is a torrent client with a task table. It is safe for concurrent use.
type Engine struct {
	opts       Options
	closing    *atomic.Bool // set by Close; read by the library's log handler
	log        *slog.Logger
	tlog       *slog.Logger // for the torrent library
	cl         *torrent.Client
	tcp        []*tcpListener // the client's TCP listeners, ours to close (listen.go)
	completion storage.PieceCompletion
	cache      metaCache
	peers      *peerWatch
	fetch      *http.Client
	listen     netip.AddrPort
	stop       chan struct{} // closed by Close
	wg         sync.WaitGroup

	// utpRecvBuffer is the uTP socket's kernel receive buffer as granted (utp.go), 0 if not set.
	utpRecvBuffer atomic.Int64

	// upLimit and downLimit are the library's rate limiters; see [Engine.SetRates].
	upLimit, downLimit *rate.Limiter
	wait               readerWait  // see Stats.ReaderWait
	freeOS             atomic.Bool // a task was removed: return freed memory to the OS (memory.go)

	mu     sync.Mutex // guards the fields below
	closed bool
	tasks  map[string]*Task
	byKey  map[string]*Task
	order  []*Task // in the order they were added
	// recoveries lists what New repaired (see Recoveries).
	recoveries []Recovery

	unclean     bool          // the last run did not stop cleanly; set in New
	verifyLimit *rate.Limiter // paces verification reads; nil = unpaced
}

// New starts an engine: it opens the piece-completion database, binds the BitTorrent port and
// starts the torrent client. Close releases all of it.
func New(opts Options) (*Engine, error) {
	if opts.DownloadDir == "" {
		return nil, errors.New("engine: download dir is required")
	}
	if opts.DataDir == "" {
		return nil, errors.New("engine: data dir is required")
	}
	var err error
	if opts.DownloadDir, err = filepath.Abs(opts.DownloadDir); err != nil {
		return nil, fmt.Errorf("engine: download dir: %w", err)
	}
	if opts.DataDir, err = filepath.Abs(opts.DataDir); err != nil {
		return nil, fmt.Errorf("engine: data dir: %w", err)
	}
	if err := os.MkdirAll(opts.DownloadDir, 0o755); err != nil {
		return nil, fmt.Errorf("engine: download dir: %w", err)
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("engine: data dir: %w", err)
	}
	var host netip.Addr
	if opts.ListenHost != "" {
		if host, err = netip.ParseAddr(opts.ListenHost); err != nil {
			return nil, fmt.Errorf("engine: listen host %q: want an IP address", opts.ListenHost)
		}
		host = host.Unmap()
	}
	if opts.ListenPort < 0 || opts.ListenPort > 65535 {
		return nil, fmt.Errorf("engine: listen port %d out of range", opts.ListenPort)
	}
	enc, err := parseEncryption(opts.Encryption)
	if err != nil {
		return nil, err
	}
	if opts.UploadRateBytes < 0 || opts.DownloadRateBytes < 0 || opts.SeedRatio < 0 || opts.MaxActive < 0 {
		return nil, errors.New("engine: negative rate, ratio or task limit")
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = defaultFetchTimeout
	}
	if opts.MaxFiles < 0 || opts.MaxNameBytes < 0 {
		return nil, errors.New("engine: negative metainfo bound")
	}
	if opts.MaxFiles == 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.MaxNameBytes == 0 {
		opts.MaxNameBytes = DefaultMaxNameBytes
	}
	if opts.StoreRetryMin <= 0 {
		opts.StoreRetryMin = DefaultStoreRetryMin
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var closing atomic.Bool
	e := &Engine{
		closing:     &closing,
		opts:        opts,
		log:         logger.With("component", "engine"),
		tlog:        slog.New(quietHandler{logger.With("component", "torrent").Handler(), &closing}),
		cache:       metaCache{dir: filepath.Join(opts.DataDir, "torrents")},
		peers:       newPeerWatch(),
		fetch:       newFetchClient(),
		stop:        make(chan struct{}),
		verifyLimit: newVerifyLimiter(opts.VerifyRateBytes),
		tasks:       make(map[string]*Task),
		byKey:       make(map[string]*Task),
	}
	// bbolt, not sqlite: pure Go, and it locks the file so two engines cannot share a DataDir.
	// A corrupt database is moved aside (see completion.go).
	e.completion, err = e.openCompletion(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}

	cfg := torrent.NewDefaultClientConfig()
	cfg.DataDir = opts.DownloadDir
	cfg.DefaultStorage = refuseStorage{} // every torrent gets its own storage, see newStorage
	cfg.ListenHost = func(string) string { return opts.ListenHost }
	cfg.ListenPort = opts.ListenPort
	switch {
	case host.Is4():
		cfg.DisableIPv6 = true
	case host.Is6():
		cfg.DisableIPv4 = true
	}
	cfg.NoDHT = opts.DisableDHT
	cfg.PeriodicallyAnnounceTorrentsToDht = !opts.DisableDHT
	cfg.DhtStartingNodes = e.dhtStartingNodes
	cfg.DisableTrackers = opts.DisableTrackers
	cfg.DisableUTP = opts.DisableUTP
	setEncryption(cfg, enc)            // encryption.go
	cfg.NoDefaultPortForwarding = true // UPnP is internal/upnp's job
	cfg.DisableWebtorrent = true
	// Seeding is decided per torrent (DisallowDataUpload); while a torrent still needs data it
	// uploads tit-for-tat only.
	cfg.Seed = true
	cfg.DisableAggressiveUpload = true
	cfg.Slogger = e.tlog
	// The library (v1.59.1) serves a peer's requests in random order and blocks on the
	// per-connection buffer budget in that order, so a peer with more requests outstanding
	// than the budget holds (anacrolix peers keep up to ~960) deadlocks the connection. A
	// budget covering the most requests we accept (1024 chunks of 16 KiB) avoids that.
	cfg.MaxAllocPeerRequestDataPerConn = maxPeerRequestData
	// A connection's writer can miss the wake-up for a request update (the library signals it
	// before the writer waits) and then sleeps until its keep-alive timer: a stalled transfer.
	// Another connection's finished piece wakes it (a have goes to every peer), so the timer
	// matters most with a single peer. It cannot be short: each time it runs out on a quiet
	// connection the library writes a keep-alive, and aria2 (1.36) closes a connection on
	// which it gets two keep-alives within 5 s as flooding. At 250 ms that cost the mixed
	// benchmark swarm its aria2 seeder a few seconds into every phase, and a read from aria2
	// alone at a limited rate stalled for good (TestRealClientAria2SlowRead).
	cfg.KeepAliveTimeout = writerWakeInterval
	// Stalled connections are closed and uTP is the fallback to TCP (peers.go): the engine
	// adds its own dialers after the client starts and watches requests through callbacks.
	cfg.DialForPeerConns = false
	e.peers.install(&cfg.Callbacks)
	e.upLimit, e.downLimit = newRateLimiters(opts.UploadRateBytes, opts.DownloadRateBytes)
	cfg.UploadRateLimiter, cfg.DownloadRateLimiter = e.upLimit, e.downLimit
	if err = e.startClient(cfg); err != nil { // listen.go
		return nil, errors.Join(
			fmt.Errorf("engine: start torrent client on %s port %d: %w", hostOrAll(opts.ListenHost), opts.ListenPort, err),
			e.completion.Close())
	}
	for _, l := range e.cl.Listeners() {
		if d, ok := l.(torrent.Dialer); ok {
			e.cl.AddDialer(peerDialer{Dialer: d, w: e.peers})
		}
	}
	e.tuneUTP() // utp.go
	if !peakRequestsFound {
		e.log.Warn("torrent library without the expected request-window field; seeks from slow-answering peers take several round trips", "field", "Peer.peakRequests")
	}
	if !host.IsValid() {
		host = netip.IPv4Unspecified()
	}
	e.listen = netip.AddrPortFrom(host, uint16(e.cl.LocalPort()))
	if err := e.startIntegrity(); err != nil {
		return nil, errors.Join(err, e.closeClient(), e.completion.Close())
	}
	e.wg.Go(e.loop)
	e.wg.Go(e.wakeOnRejects) // kick.go
	e.wg.Go(e.wakeIdleLoop)  // idlewake.go
	e.log.Info("engine started", "listen", e.listen.String(), "download_dir", opts.DownloadDir)
	return e, nil
}

func hostOrAll(h string) string {
	if h == "" {
		return "all addresses"
	}
	return h
}

// ListenAddr returns the address the BitTorrent port is bound to; the address is unspecified
// when listening on all addresses.
func (e *Engine) ListenAddr() netip.AddrPort { return e.listen }

// DownloadDir returns the absolute download directory.
func (e *Engine) DownloadDir() string { return e.opts.DownloadDir }

// Close drops every torrent, stops the client and waits for the engine's goroutines. Open
// readers fail from then on.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.closing.Store(true)
	tasks := slices.Clone(e.order)
	e.mu.Unlock()
	close(e.stop)
	for _, t := range tasks {
		t.shutdown()
	}
	var errs []error
	errs = append(errs, e.closeClient())
	e.wg.Wait()
	// Nothing is written any more: record which files match their verified pieces.
	for _, t := range tasks {
		if err := t.writeRecord(t.res.Load()); err != nil {
			errs = append(errs, fmt.Errorf("task %s: %w", t.id, err))
		}
	}
	errs = append(errs, e.completion.Close())
	if errors.Join(errs...) == nil {
		// A clean stop: the next start trusts the records.
		errs = append(errs, e.stopIntegrity())
	}
	e.log.Info("engine stopped")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close engine: %w", err)
	}
	return nil
}

// loop runs the periodic maintenance of all tasks until Close.
func (e *Engine) loop() {
	e.every(maintainInterval, func(now time.Time) {
		e.freeOSMemory()
		for _, t := range e.snapshot() {
			t.maintain(now)
			t.checkPeers(now)
		}
	})
}

// every calls f with the time of each tick, every d, until Close.
func (e *Engine) every(d time.Duration, f func(now time.Time)) {
	tk := time.NewTicker(d)
	defer tk.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-tk.C:
			f(now)
		}
	}
}

func (e *Engine) snapshot() []*Task {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.order)
}

// AddSpec describes a task to add.
type AddSpec struct {
	// ID names the task; "" gets a new UUID.
	ID string
	// Source is a magnet link, a 40/64-hex (or 32-base32) infohash, a .torrent path or an
	// http(s) URL of a .torrent; see [ParseSource].
	Source string
	// FileIndex selects the file to stream; -1 picks the largest video file.
	FileIndex int
	// Title is a display name used until (and besides) the torrent's own name.
	Title string
	// Stream downloads only the selected file (head and tail first); otherwise the whole
	// torrent is downloaded.
	Stream bool
	// Remote marks a source sent by a remote party (the web origin): it is parsed with
	// [ParseOriginSource], so a .torrent path or file:// URL is refused before any I/O.
	Remote bool
}

// Add adds a task and returns at once; for magnet links and infohashes the metainfo resolves
// in the background (see [Task.WaitInfo]) unless it is cached in DataDir. An http(s) source
// is fetched first, bounded by ctx and Options.FetchTimeout. Adding a task with the ID and
// infohash of an existing task returns that task.
func (e *Engine) Add(ctx context.Context, spec AddSpec) (*Task, error) {
	if spec.FileIndex < -1 {
		return nil, fmt.Errorf("add task: file index %d: want -1 or a file index", spec.FileIndex)
	}
	parse := ParseSource
	if spec.Remote {
		parse = ParseOriginSource
	}
	src, err := parse(spec.Source)
	if err != nil {
		return nil, fmt.Errorf("add task: %w", err)
	}
	var meta *torrentMeta
	switch src.Kind {
	case SourceFile:
		if meta, err = loadMetainfoFile(src.Path); err != nil {
			return nil, fmt.Errorf("add task: %w", err)
		}
	case SourceURL:
		fctx, cancel := context.WithTimeout(ctx, e.opts.FetchTimeout)
		var magnet *Source
		meta, magnet, err = fetchMetainfo(fctx, e.fetch, src.URL)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("add task: %w", err)
		}
		if magnet != nil {
			src = *magnet
		}
	}
	key := src.Key()
	if meta != nil {
		key = meta.key
	} else if meta = e.cache.load(key); meta != nil {
		e.log.Debug("metainfo from cache", "infohash", key)
	}
	if meta != nil {
		// Before the torrent library builds per-file state for it.
		if err := e.checkBounds(meta.info); err != nil {
			return nil, fmt.Errorf("add task %s: %w", key, err)
		}
	}
	id := spec.ID
	if id == "" {
		id = uuid.NewString()
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	if t, ok := e.tasks[id]; ok {
		if t.key == key {
			return t, nil
		}
		return nil, fmt.Errorf("add task: %w: id %s is in use", ErrExists, id)
	}
	if t, ok := e.byKey[key]; ok {
		return nil, fmt.Errorf("add task: %w", &ExistsError{TaskID: t.id, InfoHash: key})
	}
	if e.opts.MaxActive > 0 && e.activeLocked() >= e.opts.MaxActive {
		return nil, fmt.Errorf("add task: %w (max %d)", ErrTooManyTasks, e.opts.MaxActive)
	}

	t := newTask(e, id, key, spec, e.opts.DownloadDir, false)
	if meta != nil {
		if err := t.checkLayout(meta.info); err != nil {
			return nil, fmt.Errorf("add task %s: %w", key, err)
		}
	}
	aopts := torrent.AddTorrentOpts{Storage: t.newStorage()}
	if err := aopts.InfoHash.FromHexString(key); err != nil {
		return nil, fmt.Errorf("add task: infohash %q: %w", key, err)
	}
	if meta != nil {
		aopts.InfoBytes = meta.mi.InfoBytes
		if meta.v2 != nil {
			aopts.InfoHashV2.Set(*meta.v2)
		}
	} else if src.InfoHashV2 != "" {
		var v2 infohashV2
		if err := v2.FromHexString(src.InfoHashV2); err == nil {
			aopts.InfoHashV2.Set(v2)
		}
	}
	tor, isNew := e.cl.AddTorrentOpt(aopts)
	if !isNew {
		return nil, fmt.Errorf("add task: %w: infohash %s is already in the client", ErrExists, key)
	}
	t.tor = tor
	tor.SetOnWriteChunkError(t.onStoreError)
	if name := cmp.Or(src.DisplayName, spec.Title); name != "" {
		tor.SetDisplayName(name)
	}
	if !e.opts.DisableTrackers {
		var tiers [][]string
		if meta != nil {
			tiers = meta.mi.UpvertedAnnounceList()
		}
		if len(src.Trackers) > 0 {
			tiers = append(tiers, src.Trackers)
		}
		if len(e.opts.Trackers) > 0 {
			tiers = append(tiers, e.opts.Trackers)
		}
		if len(tiers) > 0 {
			tor.AddTrackers(tiers)
		}
	}
	if meta != nil && len(meta.mi.UrlList) > 0 {
		tor.AddWebSeeds(meta.mi.UrlList)
	}
	if len(src.Peers) > 0 {
		tor.AddPeers(peerInfos(src.Peers))
		e.peers.direct(t, peerInfos(src.Peers), time.Now())
	}
	e.tasks[id] = t
	e.byKey[key] = t
	e.order = append(e.order, t)
	e.log.Info("task added", "task", id, "infohash", key, "source", src.Kind.String(), "stream", spec.Stream)
	if meta != nil {
		// The info is known: select files and set priorities before anyone can look.
		t.onInfo(meta.mi)
	} else {
		e.wg.Go(t.awaitInfo)
	}
	return t, nil
}

func peerInfos(addrs []string) []torrent.PeerInfo {
	out := make([]torrent.PeerInfo, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, torrent.PeerInfo{Addr: torrent.StringAddr(a), Source: torrent.PeerSourceDirect, Trusted: true})
	}
	return out
}

// activeLocked counts the tasks that are downloading. e.mu must be held.
func (e *Engine) activeLocked() int {
	n := 0
	for _, t := range e.order {
		if t.active() {
			n++
		}
	}
	return n
}

// FreeSlots returns how many more tasks may be added before [Options.MaxActive] is reached,
// or -1 when there is no cap.
func (e *Engine) FreeSlots() int {
	if e.opts.MaxActive == 0 {
		return -1
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return max(0, e.opts.MaxActive-e.activeLocked())
}

// Task returns the task with the given ID, or an error wrapping [ErrNotFound].
func (e *Engine) Task(id string) (*Task, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tasks[id]
	if !ok {
		return nil, fmt.Errorf("task %q: %w", id, ErrNotFound)
	}
	return t, nil
}

// Tasks returns the status of every task, in the order they were added.
func (e *Engine) Tasks() []Status {
	tasks := e.snapshot()
	out := make([]Status, 0, len(tasks))
	for _, t := range tasks {
		out = append(out, t.Status())
	}
	return out
}

// Pause stops a task's transfers; its readers fail with [ErrPaused] when they need data.
func (e *Engine) Pause(id string) error {
	t, err := e.Task(id)
	if err != nil {
		return err
	}
	t.setPaused(true)
	return nil
}

// Resume restarts a paused task's transfers, or downloading by a task stopped by a storage
// error ([ErrDiskFull], [ErrWrite]), for instance after the user freed space.
func (e *Engine) Resume(id string) error {
	t, err := e.Task(id)
	if err != nil {
		return err
	}
	t.resume()
	return nil
}

// Remove drops a task. With deleteFiles it also deletes the task's files under DownloadDir
// (never anything else: files seeded in place by [Engine.Seed] are left alone), its cached
// metainfo and its piece completion.
func (e *Engine) Remove(id string, deleteFiles bool) error {
	e.mu.Lock()
	t, ok := e.tasks[id]
	if ok {
		delete(e.tasks, id)
		delete(e.byKey, t.key)
		e.order = slices.DeleteFunc(e.order, func(x *Task) bool { return x == t })
	}
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("remove task %q: %w", id, ErrNotFound)
	}
	t.shutdown()
	e.peers.forget(t)
	t.tor.Drop()
	if !e.releaseDeferred() {
		e.log.Debug("deferred actions of the torrent library not found; a removed torrent may stay in memory")
	}
	e.log.Info("task removed", "task", id, "infohash", t.key, "delete_files", deleteFiles)
	if !deleteFiles || t.seeded {
		if err := t.writeRecord(t.res.Load()); err != nil {
			return fmt.Errorf("remove task %q: %w", id, err)
		}
		return nil
	}
	if err := errors.Join(t.deleteData(), t.removeRecord()); err != nil {
		return fmt.Errorf("remove task %q: %w", id, err)
	}
	return nil
}

// pieceKey returns the completion-database key of piece i of the torrent filed under key.
func pieceKey(key string, i int) metainfo.PieceKey {
	var pk metainfo.PieceKey
	_ = pk.InfoHash.FromHexString(key)
	pk.Index = i
	return pk
}

// refuseStorage is the client's default storage. Every torrent is added with its own
// storage, so reaching it is a bug; refusing keeps data from landing anywhere unexpected.
type refuseStorage struct{}

func (refuseStorage) OpenTorrent(context.Context, *metainfo.Info, metainfo.Hash) (storage.TorrentImpl, error) {
	return storage.TorrentImpl{}, errors.New("engine: torrent added without storage")
}

// sharedCompletion lets several storages use the engine's completion database; the engine
// closes it once.
type sharedCompletion struct{ storage.PieceCompletion }

func (sharedCompletion) Close() error { return nil }

// quietHandler passes the torrent library's warnings and errors on, minus the errors it logs
// for every read that a caller cancels, and with known noise demoted to debug: mmap flush
// failures on pieces that straddle files (the data is written regardless), and completion
// updates racing the database closing at shutdown.
type quietHandler struct {
	slog.Handler
	closing *atomic.Bool
}

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if isDHTAnnounceError(r.Message) || isChunkWriteError(r.Message) {
		r.Level = slog.LevelDebug
	}
	switch r.Message {
	case "initial read failed", "read failed after reader reset", "read failed after completion resync":
		return nil
	case "error flushing piece storage":
		r.Level = slog.LevelDebug
	case "error marking piece complete", "error marking piece not complete", "error getting piece completion":
		if h.closing.Load() {
			r.Level = slog.LevelDebug
		}
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as), h.closing}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name), h.closing}
}

// WriteDebug writes the torrent library's view of every torrent and connection to w, for
// diagnostics (it names peers' addresses; keep it off the media listener).
func (e *Engine) WriteDebug(w io.Writer) {
	e.cl.WriteStatus(w)
}
