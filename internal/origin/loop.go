package origin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/torrentclaw/cli/internal/netaddr"
)

// Agent is what the [Loop] needs from the daemon. Its methods are called from
// the loop's goroutines, possibly concurrently with each other; they should
// return quickly (start slow work on the agent's own goroutines).
type Agent interface {
	// Snapshot reports the daemon's current facts. It is called before every
	// register and every sync, so addresses and tasks are always fresh.
	Snapshot(ctx context.Context) Snapshot
	// Apply hands over what a sync reply asks for. Every entry has been
	// validated (ids present, tokens well formed); malformed ones were
	// skipped. It is called only when the reply carries at least one entry.
	Apply(ctx context.Context, r SyncReply)
	// ApplyStatusResults hands over the origin's answers to a status batch,
	// each with TaskID filled in; results that ask nothing are left out.
	ApplyStatusResults(ctx context.Context, results []StatusResult)
}

// Snapshot is what the daemon reports about itself on register and sync.
type Snapshot struct {
	StreamPort      int // the media listener's port (bound before Run)
	HTTPSStreamPort int // the TLS media port; 0 = none
	Addresses       netaddr.Addresses
	DownloadDir     string
	DiskFreeBytes   int64
	DiskTotalBytes  int64
	FreeSlots       int         // how many more tasks the daemon accepts now
	Tasks           []TaskState // sync only
}

// Defaults for [LoopOptions].
const (
	DefaultSyncInterval      = 10 * time.Second
	DefaultWatchingInterval  = 3 * time.Second
	DefaultStatusInterval    = time.Second
	DefaultBackoffBase       = time.Second
	DefaultBackoffMax        = 60 * time.Second
	DefaultEventsIdleTimeout = 60 * time.Second
	DefaultMaxEventBytes     = 64 << 10
	DefaultLongPollTimeout   = 60 * time.Second
	DefaultEventsRetry       = 10 * time.Minute
	DefaultShutdownTimeout   = 5 * time.Second
)

// LoopOptions configure a [Loop]. Zero durations and sizes take the defaults
// above; tests shorten them.
type LoopOptions struct {
	Client *Client // required
	Agent  Agent   // required
	Logger *slog.Logger

	SyncInterval     time.Duration // heartbeat period (10 s)
	WatchingInterval time.Duration // heartbeat period while someone watches (3 s)
	StatusInterval   time.Duration // batching window for Report (1 s)
	BackoffBase      time.Duration // first retry delay after a failure (1 s)
	BackoffMax       time.Duration // retry delay cap (60 s)

	// EventsIdleTimeout: an event stream that delivers no byte (event,
	// comment or keepalive) for this long is dropped and reopened (60 s).
	EventsIdleTimeout time.Duration
	// MaxEventBytes caps one SSE line and one event's data (64 KiB); more
	// drops the connection.
	MaxEventBytes int
	// LongPollTimeout bounds one GET wake (60 s).
	LongPollTimeout time.Duration
	// EventsRetry is how long the loop stays on long poll before trying the
	// event stream again (10 min).
	EventsRetry time.Duration
	// ShutdownTimeout bounds the final status flush and deregister (5 s).
	ShutdownTimeout time.Duration
}

func (o *LoopOptions) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.SyncInterval, DefaultSyncInterval)
	def(&o.WatchingInterval, DefaultWatchingInterval)
	def(&o.StatusInterval, DefaultStatusInterval)
	def(&o.BackoffBase, DefaultBackoffBase)
	def(&o.BackoffMax, DefaultBackoffMax)
	def(&o.EventsIdleTimeout, DefaultEventsIdleTimeout)
	def(&o.LongPollTimeout, DefaultLongPollTimeout)
	def(&o.EventsRetry, DefaultEventsRetry)
	def(&o.ShutdownTimeout, DefaultShutdownTimeout)
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = DefaultMaxEventBytes
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = o.BackoffBase
	}
}

// Downlink modes reported in [Stats.Downlink].
const (
	DownlinkNone     = ""
	DownlinkEvents   = "events"
	DownlinkLongPoll = "long-poll"
)

// Stats describe the loop for status commands. LastError never holds a
// secret.
type Stats struct {
	Registered bool
	Watching   bool
	Downlink   string // DownlinkEvents, DownlinkLongPoll or DownlinkNone
	LastSync   time.Time
	LastError  string // "" after a successful call
}

// Loop keeps the daemon registered with the origin: the heartbeat (sync),
// the downlink (events or long poll), status batches, and deregister on
// shutdown. Create it with [NewLoop] and start it with [Loop.Run].
type Loop struct {
	c     *Client
	agent Agent
	log   *slog.Logger
	o     LoopOptions

	wakeCh   chan struct{} // buffered 1: wake requests coalesce into one sync
	watchOn  chan struct{} // buffered 1: a status reply turned watching on
	statusCh chan struct{} // buffered 1: Report queued something

	ready     chan struct{} // closed after the first successful register
	readyOnce sync.Once

	running    atomic.Bool
	registered atomic.Bool
	watching   atomic.Bool

	// mu guards pending, order, stats and lastAddrs.
	mu        sync.Mutex
	pending   map[string]StatusUpdate
	order     []string
	stats     Stats
	lastAddrs *netaddr.Addresses

	// Clock hooks for the heartbeat schedule; tests replace them.
	after func(time.Duration) <-chan time.Time
	now   func() time.Time
}

// NewLoop checks opts and returns a Loop. It starts nothing.
func NewLoop(opts LoopOptions) (*Loop, error) {
	if opts.Client == nil {
		return nil, errors.New("origin: loop needs a client")
	}
	if opts.Agent == nil {
		return nil, errors.New("origin: loop needs an agent")
	}
	opts.setDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Loop{
		c:        opts.Client,
		agent:    opts.Agent,
		log:      log.With("component", "origin"),
		o:        opts,
		wakeCh:   make(chan struct{}, 1),
		watchOn:  make(chan struct{}, 1),
		statusCh: make(chan struct{}, 1),
		ready:    make(chan struct{}),
		pending:  make(map[string]StatusUpdate),
		after:    time.After,
		now:      time.Now,
	}, nil
}

// SyncNow asks for a sync as soon as possible (e.g. after a task finished).
// It never blocks; requests made while a sync is pending coalesce.
func (l *Loop) SyncNow() { signal(l.wakeCh) }

func drain(ch chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// SessionReady tells the origin that HLS session id is ready. One attempt,
// bounded by ctx and the call timeout.
func (l *Loop) SessionReady(ctx context.Context, sessionID string) error {
	return l.c.SessionReady(ctx, sessionID)
}

// SessionError tells the origin that HLS session id failed. One attempt.
func (l *Loop) SessionError(ctx context.Context, sessionID, code, message string) error {
	return l.c.SessionError(ctx, sessionID, code, message)
}

// Stats returns a snapshot of the loop's state.
func (l *Loop) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Registered = l.registered.Load()
	s.Watching = l.watching.Load()
	return s
}

func (l *Loop) setDownlink(mode string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Downlink = mode
}

func (l *Loop) setLastError(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.stats.LastError = ""
		return
	}
	l.stats.LastError = err.Error()
}

// setWatching records the latest "watching" answer; turning it on wakes the
// heartbeat so it can shorten its wait.
func (l *Loop) setWatching(w bool) {
	if old := l.watching.Swap(w); w && !old {
		signal(l.watchOn)
	}
}

// Run registers, then keeps syncing, listening for wakes and sending status
// batches until ctx is done. The daemon calls it after binding its media
// listener. On a clean shutdown it flushes pending status, deregisters
// (bounded by ShutdownTimeout) and returns nil. When the origin rejects the
// API key (401/403/410) it stops and returns an error matching [ErrRevoked];
// local streaming is not affected. Run may be called once.
func (l *Loop) Run(ctx context.Context) error {
	if !l.running.CompareAndSwap(false, true) {
		return errors.New("origin: loop already ran")
	}
	defer l.c.CloseIdleConnections()

	gctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for _, f := range []func(context.Context) error{l.syncLoop, l.downlink, l.statusLoop} {
		wg.Go(func() {
			if err := f(gctx); err != nil {
				errOnce.Do(func() {
					firstErr = err
					cancel(err)
				})
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		l.registered.Store(false)
		l.setDownlink(DownlinkNone)
		l.setLastError(firstErr)
		return fmt.Errorf("origin loop stopped: %w", firstErr)
	}
	l.shutdown(ctx)
	return nil
}

// shutdown flushes pending status updates and deregisters, with a fresh
// timeout: ctx is already cancelled.
func (l *Loop) shutdown(ctx context.Context) {
	l.setDownlink(DownlinkNone)
	select {
	case <-l.ready:
	default:
		return // never registered: nothing to say
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.o.ShutdownTimeout)
	defer cancel()
	for {
		batch := l.takeBatch()
		if len(batch) == 0 {
			break
		}
		if _, err := l.c.Status(sctx, batch); err != nil {
			l.log.Warn("final status batch not sent", "err", err, "updates", len(batch))
			break
		}
	}
	if err := l.c.Deregister(sctx); err != nil {
		l.log.Warn("deregister failed", "err", err)
	} else {
		l.log.Info("deregistered from origin")
	}
	l.registered.Store(false)
}

// backoff returns the delay before retry number n (n >= 1): the base doubled
// n-1 times, capped, with "equal jitter" (uniform in [d/2, d]) so many
// daemons do not retry in step.
func (l *Loop) backoff(n int) time.Duration {
	d := l.o.BackoffMax
	if n < 1 {
		n = 1
	}
	if n <= 32 {
		if b := l.o.BackoffBase << (n - 1); b > 0 && b < d {
			d = b
		}
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx is done; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// noteAddrs logs when the addresses reported to the origin change.
func (l *Loop) noteAddrs(a netaddr.Addresses) {
	l.mu.Lock()
	prev := l.lastAddrs
	l.lastAddrs = &a
	l.mu.Unlock()
	if prev != nil && *prev != a {
		l.log.Info("addresses changed", "addresses", a)
	}
}

func (l *Loop) register(ctx context.Context) error {
	s := l.agent.Snapshot(ctx)
	_, err := l.c.Register(ctx, RegisterRequest{
		DownloadDir:     s.DownloadDir,
		DiskFreeBytes:   s.DiskFreeBytes,
		DiskTotalBytes:  s.DiskTotalBytes,
		StreamPort:      s.StreamPort,
		HTTPSStreamPort: s.HTTPSStreamPort,
		LanIP:           addrString(s.Addresses.LAN),
		TailscaleIP:     addrString(s.Addresses.Tailscale),
	})
	if err != nil {
		return err
	}
	l.noteAddrs(s.Addresses)
	l.registered.Store(true)
	l.readyOnce.Do(func() { close(l.ready) })
	l.log.Info("registered with origin", "addresses", s.Addresses, "stream_port", s.StreamPort)
	return nil
}

func (l *Loop) sync(ctx context.Context) (SyncReply, error) {
	s := l.agent.Snapshot(ctx)
	l.noteAddrs(s.Addresses)
	return l.c.Sync(ctx, SyncRequest{
		StreamPort:      s.StreamPort,
		HTTPSStreamPort: s.HTTPSStreamPort,
		LanIP:           addrString(s.Addresses.LAN),
		TailscaleIP:     addrString(s.Addresses.Tailscale),
		FreeSlots:       s.FreeSlots,
		Tasks:           s.Tasks,
	})
}

// syncLoop is the heartbeat: register when needed, sync at once, then every
// SyncInterval (WatchingInterval while watching) or on a wake; back off on
// failures. It returns nil when ctx is done and an error only when the key
// is revoked.
func (l *Loop) syncLoop(ctx context.Context) error {
	failures := 0 // consecutive failed calls; reset only by a successful sync
	fail := func(call string, err error) bool {
		failures++
		d := l.backoff(failures)
		l.setLastError(err)
		l.log.Warn("origin call failed", "call", call, "err", err, "attempt", failures, "retry_in", d.Round(time.Millisecond))
		return l.waitBackoff(ctx, d)
	}
	for {
		if !l.registered.Load() {
			err := l.register(ctx)
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, ErrRevoked):
				return err
			case err != nil:
				if !fail("register", err) {
					return nil
				}
				continue
			}
		}
		drain(l.wakeCh) // this sync answers every wake received so far
		started := l.now()
		reply, err := l.sync(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrRevoked):
			return err
		case isStatus(err, http.StatusNotFound):
			// The origin forgot us (restarted, or the agent was removed):
			// register again, at once the first time.
			l.registered.Store(false)
			l.log.Info("origin does not know this agent; registering again")
			if failures == 0 {
				failures++
				continue
			}
			if !fail("sync", err) {
				return nil
			}
			continue
		case err != nil:
			if !fail("sync", err) {
				return nil
			}
			continue
		}
		if failures > 0 {
			l.log.Info("origin reachable again", "failed_attempts", failures)
		}
		failures = 0
		l.setLastError(nil)
		l.mu.Lock()
		l.stats.LastSync = started
		l.mu.Unlock()
		l.watching.Store(reply.Watching)
		drain(l.watchOn) // the schedule below already follows this answer
		for _, rj := range reply.Rejected {
			// Reported as failed with its fixed code, so the origin shows
			// why instead of waiting for a task that will never exist.
			l.Report(TaskState{TaskID: rj.TaskID, Status: StatusFailed, ErrorMessage: rj.Code + ": " + codeMessages[rj.Code]})
		}
		if !reply.Empty() {
			l.agent.Apply(ctx, reply)
		}
		if !l.waitNext(ctx, started) {
			return nil
		}
	}
}

// waitBackoff waits d after a failure. Wakes do not cut it short (an origin
// that keeps waking a failing daemon must not defeat the backoff), but one
// that arrived stays queued for after the retry.
func (l *Loop) waitBackoff(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-l.after(d):
		return true
	}
}

// waitNext waits until the next heartbeat is due (counted from the start
// of the last sync), a wake arrives, or ctx is done. When a status reply
// turns watching on meanwhile, the wait is shortened to WatchingInterval.
func (l *Loop) waitNext(ctx context.Context, last time.Time) bool {
	for {
		interval := l.o.SyncInterval
		if l.watching.Load() {
			interval = l.o.WatchingInterval
		}
		d := interval - l.now().Sub(last)
		if d <= 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-l.wakeCh:
			return true
		case <-l.after(d):
			return true
		case <-l.watchOn:
		}
	}
}
