package origin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/netaddr"
)

const (
	testAPIKey  = "tck_live_0123456789abcdefSECRETKEY0123456789"
	testAgentID = "agent-7f3a"
	testVersion = "1.2.3"
)

// recordedCall is one request the fake origin received.
type recordedCall struct {
	Name   string // "register", "sync", ...
	Method string
	Query  string
	Header http.Header
	Body   []byte
	N      int // 1-based count of calls with this name
}

// fakeOrigin is an httptest server speaking the origin protocol. Each call
// has a handler (replaceable per test) that gets the call's 1-based count.
type fakeOrigin struct {
	srv *httptest.Server

	mu       sync.Mutex // guards calls, counts, handlers
	calls    []recordedCall
	counts   map[string]int
	handlers map[string]func(w http.ResponseWriter, r *http.Request, n int)
}

func newFakeOrigin(t *testing.T) *fakeOrigin {
	t.Helper()
	f := &fakeOrigin{
		counts: map[string]int{},
		handlers: map[string]func(http.ResponseWriter, *http.Request, int){
			"register":      jsonReply(200, `{"success":true,"user":{"name":"u","email":"u@example.com"},"features":{"torrent":true}}`),
			"sync":          jsonReply(200, `{}`),
			"status":        jsonReply(200, `{"results":[]}`),
			"session-ready": jsonReply(200, `{"success":true}`),
			"session-error": jsonReply(200, `{"success":true}`),
			"deregister":    jsonReply(200, `{"success":true}`),
			"events":        jsonReply(404, `{"error":"not found"}`),
			"wake":          jsonReply(404, `{"error":"not found"}`),
		},
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fakeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, APIPath)
	if !ok {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	f.mu.Lock()
	f.counts[name]++
	n := f.counts[name]
	f.calls = append(f.calls, recordedCall{Name: name, Method: r.Method, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, N: n})
	h := f.handlers[name]
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+testAPIKey {
		jsonReply(401, `{"error":"bad key"}`)(w, r, n)
		return
	}
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h(w, r, n)
}

func (f *fakeOrigin) handle(name string, h func(w http.ResponseWriter, r *http.Request, n int)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[name] = h
}

func (f *fakeOrigin) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[name]
}

func (f *fakeOrigin) callsNamed(name string) []recordedCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recordedCall
	for _, c := range f.calls {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeOrigin) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.calls))
	for _, c := range f.calls {
		out = append(out, c.Name)
	}
	return out
}

func jsonReply(code int, body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

// seqReply answers call n with bodies[n-1], repeating the last one.
func seqReply(bodies ...string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		jsonReply(200, bodies[min(n, len(bodies))-1])(w, r, n)
	}
}

// hang blocks until the client gives up.
func hang(_ http.ResponseWriter, r *http.Request, _ int) { <-r.Context().Done() }

// sseStream answers with an event stream and writes whatever arrives on
// push until the client leaves.
func sseStream(push <-chan string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case s := <-push:
				io.WriteString(w, s)
				w.(http.Flusher).Flush()
			}
		}
	}
}

// testAgent records what the loop hands over.
type testAgent struct {
	mu       sync.Mutex // guards all fields
	snap     Snapshot
	replies  []SyncReply
	results  []StatusResult
	applyCtx []error // ctx.Err() at Apply time
}

func newTestAgent() *testAgent {
	return &testAgent{snap: Snapshot{
		StreamPort:      11818,
		HTTPSStreamPort: 11819,
		Addresses: netaddr.Addresses{
			LAN:       netip.MustParseAddr("192.168.1.5"),
			Tailscale: netip.MustParseAddr("100.101.102.103"),
		},
		DownloadDir:    "/srv/downloads",
		DiskFreeBytes:  1 << 30,
		DiskTotalBytes: 1 << 40,
		FreeSlots:      3,
		Tasks:          []TaskState{{TaskID: "t-running", Status: StatusDownloading, Progress: 42.5, StreamReady: true}},
	}}
}

func (a *testAgent) Snapshot(context.Context) Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.snap
	s.Tasks = slices.Clone(s.Tasks)
	return s
}

func (a *testAgent) setSnapshot(s Snapshot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.snap = s
}

func (a *testAgent) Apply(ctx context.Context, r SyncReply) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.replies = append(a.replies, r)
	a.applyCtx = append(a.applyCtx, ctx.Err())
}

func (a *testAgent) ApplyStatusResults(_ context.Context, res []StatusResult) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.results = append(a.results, res...)
}

func (a *testAgent) applied() []SyncReply {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.replies)
}

func (a *testAgent) statusResults() []StatusResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.results)
}

// waitUntil polls cond until it holds or a deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// Only turns a hang into a failure; generous for a loaded machine.
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// checkGoroutines fails the test if goroutines started during it are still
// running shortly after it (and its other cleanups) finished. Call it first
// so its cleanup runs last. Tests using it must not run in parallel.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			<-tick.C
		}
	})
}

// fakeClock drives the heartbeat schedule: every wait the sync loop starts
// is recorded, and fires only when the test says so. Now is fixed, so the
// recorded durations are exact.
type fakeClock struct {
	waits chan fakeWait // buffered so the loop never blocks on it
	now   time.Time
}

type fakeWait struct {
	d  time.Duration
	ch chan time.Time
}

func (w fakeWait) fire() { w.ch <- time.Time{} }

func newFakeClock() *fakeClock {
	return &fakeClock{waits: make(chan fakeWait, 1000), now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) after(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- fakeWait{d: d, ch: ch}
	return ch
}

// next returns the next wait the loop started.
func (c *fakeClock) next(t *testing.T) fakeWait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(2 * time.Minute): // a hang guard: generous for a loaded machine
		t.Fatalf("timed out waiting for the loop to wait")
		return fakeWait{}
	}
}

// harness runs a Loop against a fake origin.
type harness struct {
	f      *fakeOrigin
	agent  *testAgent
	loop   *Loop
	logs   *logBuffer
	client *Client
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

type harnessOpts struct {
	loop   func(*LoopOptions)
	client func(*Options)
	clock  *fakeClock
}

// fastLoop shortens every interval; tests override what they measure.
func fastLoop(o *LoopOptions) {
	o.SyncInterval = time.Hour // syncs come only from the start and from wakes
	o.WatchingInterval = time.Hour
	o.StatusInterval = 5 * time.Millisecond
	o.BackoffBase = 5 * time.Millisecond
	o.BackoffMax = 50 * time.Millisecond
	o.EventsIdleTimeout = 5 * time.Second
	o.LongPollTimeout = 5 * time.Second
	o.EventsRetry = time.Hour
	o.ShutdownTimeout = 5 * time.Second
}

func startLoop(t *testing.T, f *fakeOrigin, ho harnessOpts) *harness {
	t.Helper()
	h := &harness{f: f, agent: newTestAgent(), logs: newLogBuffer(), done: make(chan error, 1)}
	copts := Options{
		BaseURL: f.srv.URL,
		APIKey:  testAPIKey,
		AgentID: testAgentID,
		Name:    "test box",
		Version: testVersion,
		Timeout: 2 * time.Second,
		Logger:  h.logs.logger(),
	}
	if ho.client != nil {
		ho.client(&copts)
	}
	c, err := New(copts)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	h.client = c
	lopts := LoopOptions{Client: c, Agent: h.agent, Logger: h.logs.logger()}
	fastLoop(&lopts)
	if ho.loop != nil {
		ho.loop(&lopts)
	}
	l, err := NewLoop(lopts)
	if err != nil {
		t.Fatalf("NewLoop() = %v", err)
	}
	if ho.clock != nil {
		l.after = ho.clock.after
		l.now = func() time.Time { return ho.clock.now }
	}
	h.loop = l
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	go func() { h.done <- l.Run(ctx) }()
	t.Cleanup(func() {
		h.stop(t)
		if t.Failed() {
			t.Logf("loop logs:\n%s", h.logs.String())
			t.Logf("origin calls: %v", f.names())
		}
	})
	return h
}

// stop cancels the loop and returns Run's result.
func (h *harness) stop(t *testing.T) error {
	t.Helper()
	h.once.Do(func() {
		h.cancel()
		h.err = h.wait(t)
	})
	return h.err
}

// wait returns Run's result without cancelling.
func (h *harness) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-h.done:
		h.done <- err // keep it for later calls
		return err
	case <-time.After(2 * time.Minute): // a hang guard: generous for a loaded machine
		t.Fatalf("Run did not return")
		return nil
	}
}

func decodeBody[T any](t *testing.T, c recordedCall) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(c.Body, &v); err != nil {
		t.Fatalf("decode %s body %s: %v", c.Name, c.Body, err)
	}
	return v
}

func decodeMap(t *testing.T, c recordedCall) map[string]any {
	t.Helper()
	return decodeBody[map[string]any](t, c)
}
