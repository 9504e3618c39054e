package origin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewLoopValidation(t *testing.T) {
	t.Parallel()
	c, err := New(Options{BaseURL: "http://127.0.0.1:1", APIKey: "k", AgentID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts LoopOptions
	}{
		{"no client", LoopOptions{Agent: newTestAgent()}},
		{"no agent", LoopOptions{Client: c}},
	}
	for _, tc := range tests {
		if _, err := NewLoop(tc.opts); err == nil {
			t.Errorf("NewLoop(%s) = nil error, want error", tc.name)
		}
	}
	l, err := NewLoop(LoopOptions{Client: c, Agent: newTestAgent()})
	if err != nil {
		t.Fatal(err)
	}
	if l.o.SyncInterval != DefaultSyncInterval || l.o.WatchingInterval != DefaultWatchingInterval ||
		l.o.BackoffMax != DefaultBackoffMax || l.o.MaxEventBytes != DefaultMaxEventBytes {
		t.Errorf("NewLoop defaults = %+v", l.o)
	}
}

func TestBackoffRange(t *testing.T) {
	t.Parallel()
	c, _ := New(Options{BaseURL: "http://127.0.0.1:1", APIKey: "k", AgentID: "a"})
	l, _ := NewLoop(LoopOptions{Client: c, Agent: newTestAgent(), BackoffBase: time.Second, BackoffMax: 60 * time.Second})
	tests := []struct {
		n      int
		lo, hi time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{6, 16 * time.Second, 32 * time.Second},
		{7, 30 * time.Second, 60 * time.Second}, // 64 s, capped to 60 s

		{40, 30 * time.Second, 60 * time.Second},
		{1000, 30 * time.Second, 60 * time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			if d := l.backoff(tc.n); d < tc.lo || d > tc.hi {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tc.n, d, tc.lo, tc.hi)
			}
		}
	}
}

func TestLoopRegisterSyncDeregister(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	h := startLoop(t, f, harnessOpts{})
	waitUntil(t, "first sync", func() bool { return f.count("sync") >= 1 })

	reg := f.callsNamed("register")[0]
	if reg.Method != http.MethodPost {
		t.Errorf("register method = %s, want POST", reg.Method)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer " + testAPIKey,
		"User-Agent":    "torrentclaw/" + testVersion,
		"Content-Type":  "application/json",
	} {
		if got := reg.Header.Get(k); got != want {
			t.Errorf("register header %s = %q, want %q", k, got, want)
		}
	}
	wantReg := map[string]any{
		"agentId": testAgentID, "name": "test box", "os": runtime.GOOS, "arch": runtime.GOARCH, "version": testVersion,
		"downloadDir": "/srv/downloads", "diskFreeBytes": float64(1 << 30), "diskTotalBytes": float64(1 << 40),
		"streamPort": float64(11818), "httpsStreamPort": float64(11819),
		"lanIp": "192.168.1.5", "tailscaleIp": "100.101.102.103",
	}
	if got := decodeMap(t, reg); !reflect.DeepEqual(got, wantReg) {
		t.Errorf("register body = %v, want %v", got, wantReg)
	}

	sync1 := decodeMap(t, f.callsNamed("sync")[0])
	wantSync := map[string]any{
		"agentId": testAgentID, "version": testVersion, "os": runtime.GOOS, "arch": runtime.GOARCH, "name": "test box",
		"streamPort": float64(11818), "httpsStreamPort": float64(11819),
		"lanIp": "192.168.1.5", "tailscaleIp": "100.101.102.103", "freeSlots": float64(3),
		"tasks": []any{map[string]any{"taskId": "t-running", "status": "downloading", "progress": 42.5,
			"downloadedBytes": float64(0), "totalBytes": float64(0), "speedBps": float64(0), "eta": float64(0), "streamReady": true}},
	}
	if !reflect.DeepEqual(sync1, wantSync) {
		t.Errorf("sync body = %v, want %v", sync1, wantSync)
	}

	// Addresses are refreshed on every sync; a change is logged; unknown
	// addresses are left out.
	s := h.agent.Snapshot(t.Context())
	s.Addresses.LAN = netip.MustParseAddr("10.0.0.7")
	s.Addresses.Tailscale = netip.Addr{}
	s.Tasks = nil
	h.agent.setSnapshot(s)
	h.loop.SyncNow()
	waitUntil(t, "second sync", func() bool { return f.count("sync") >= 2 })
	sync2 := decodeMap(t, f.callsNamed("sync")[1])
	if sync2["lanIp"] != "10.0.0.7" || sync2["tailscaleIp"] != nil {
		t.Errorf("sync 2 addresses = %v / %v, want 10.0.0.7 / absent", sync2["lanIp"], sync2["tailscaleIp"])
	}
	if tasks, ok := sync2["tasks"].([]any); !ok || len(tasks) != 0 {
		t.Errorf("sync 2 tasks = %#v, want []", sync2["tasks"])
	}
	if !strings.Contains(h.logs.String(), "addresses changed") {
		t.Errorf("no address change logged:\n%s", h.logs.String())
	}
	st := h.loop.Stats()
	if !st.Registered || st.LastSync.IsZero() || st.LastError != "" {
		t.Errorf("Stats() = %+v", st)
	}
	if err := h.loop.Run(t.Context()); err == nil {
		t.Errorf("second Run() = nil, want error")
	}

	if err := h.stop(t); err != nil {
		t.Fatalf("Run() = %v, want nil on clean shutdown", err)
	}
	dereg := f.callsNamed("deregister")
	if len(dereg) != 1 {
		t.Fatalf("deregister calls = %d, want 1", len(dereg))
	}
	if got := decodeMap(t, dereg[0]); !reflect.DeepEqual(got, map[string]any{"agentId": testAgentID}) {
		t.Errorf("deregister body = %v", got)
	}
	if names := slices.DeleteFunc(f.names(), func(n string) bool { return n == "events" || n == "wake" }); names[len(names)-1] != "deregister" {
		t.Errorf("last call = %s, want deregister (calls %v)", names[len(names)-1], names)
	}
}

func TestLoopNoDeregisterWhenNeverRegistered(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	f.handle("register", jsonReply(500, `{"error":"down"}`))
	h := startLoop(t, f, harnessOpts{})
	waitUntil(t, "register attempts", func() bool { return f.count("register") >= 2 })
	if err := h.stop(t); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if n := f.count("deregister") + f.count("sync") + f.count("events") + f.count("status"); n != 0 {
		t.Errorf("calls after a failed register = %v, want only register", f.names())
	}
}

func TestLoopHeartbeatCadence(t *testing.T) {
	checkGoroutines(t)
	clock := newFakeClock()
	f := newFakeOrigin(t)
	f.handle("sync", seqReply(`{"watching":false}`, `{"watching":true}`, `{"watching":true}`, `{"watching":false}`, `{}`))
	f.handle("status", jsonReply(200, `{"results":[{}],"watching":true}`))
	h := startLoop(t, f, harnessOpts{clock: clock, loop: func(o *LoopOptions) {
		o.SyncInterval = 10 * time.Second
		o.WatchingInterval = 3 * time.Second
	}})

	steps := []struct {
		name  string
		syncs int           // syncs done when the wait starts
		want  time.Duration // the wait the loop starts
		fire  bool
	}{
		{"idle after first sync", 1, 10 * time.Second, true},
		{"watching", 2, 3 * time.Second, true},
		{"still watching", 3, 3 * time.Second, true},
		{"idle again", 4, 10 * time.Second, false},
	}
	for _, s := range steps {
		w := clock.next(t)
		if w.d != s.want {
			t.Fatalf("%s: wait = %v, want %v", s.name, w.d, s.want)
		}
		if n := f.count("sync"); n != s.syncs {
			t.Fatalf("%s: syncs = %d, want %d", s.name, n, s.syncs)
		}
		if s.fire {
			w.fire()
		}
	}

	// A wake syncs at once, without the timer firing.
	h.loop.SyncNow()
	if w := clock.next(t); w.d != 10*time.Second || f.count("sync") != 5 {
		t.Fatalf("after SyncNow: wait %v, syncs %d; want 10s, 5", w.d, f.count("sync"))
	}

	// A status reply saying "watching" shortens the running wait to 3 s.
	h.loop.Report(StatusUpdate{TaskID: "t1", Status: StatusDownloading})
	w := clock.next(t)
	if w.d != 3*time.Second {
		t.Fatalf("after status watching=true: wait = %v, want 3s", w.d)
	}
	if !h.loop.Stats().Watching {
		t.Errorf("Stats().Watching = false after status said watching")
	}
	w.fire()
	waitUntil(t, "sync 6", func() bool { return f.count("sync") == 6 })
	if w := clock.next(t); w.d != 10*time.Second {
		t.Fatalf("after sync 6: wait = %v, want 10s", w.d)
	}
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestLoopBackoffGrowsAndResets(t *testing.T) {
	checkGoroutines(t)
	clock := newFakeClock()
	f := newFakeOrigin(t)
	f.handle("register", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			jsonReply(503, `{"error":"starting"}`)(w, r, n)
			return
		}
		jsonReply(200, `{"success":true}`)(w, r, n)
	})
	f.handle("sync", func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case n <= 3 || n == 6:
			jsonReply(500, `{"error":"database down","details":{"retry":true}}`)(w, r, n)
		case n == 4:
			hang(w, r, n)
		default:
			jsonReply(200, `{}`)(w, r, n)
		}
	})
	h := startLoop(t, f, harnessOpts{
		clock:  clock,
		client: func(o *Options) { o.Timeout = time.Second }, // the hang costs 1 s; shorter flakes under load
		loop: func(o *LoopOptions) {
			o.SyncInterval = 10 * time.Second
			o.BackoffBase = time.Second
			o.BackoffMax = 60 * time.Second
		},
	})
	s := time.Second
	steps := []struct {
		name     string
		lo, hi   time.Duration
		register int
		syncs    int
	}{
		{"register 503", s / 2, s, 1, 0},
		{"sync 500 #1", s, 2 * s, 2, 1},
		{"sync 500 #2", 2 * s, 4 * s, 2, 2},
		{"sync 500 #3", 4 * s, 8 * s, 2, 3},
		{"sync hangs", 8 * s, 16 * s, 2, 4},
		{"recovered", 10 * s, 10 * s, 2, 5},
		{"fails again: backoff reset", s / 2, s, 2, 6},
		{"recovered again", 10 * s, 10 * s, 2, 7},
	}
	for _, st := range steps {
		w := clock.next(t)
		if w.d < st.lo || w.d > st.hi {
			t.Fatalf("%s: wait = %v, want in [%v, %v]", st.name, w.d, st.lo, st.hi)
		}
		if r, n := f.count("register"), f.count("sync"); r != st.register || n != st.syncs {
			t.Fatalf("%s: register/sync calls = %d/%d, want %d/%d", st.name, r, n, st.register, st.syncs)
		}
		w.fire()
	}
	logs := h.logs.String()
	for _, want := range []string{"origin call failed", "database down", "origin reachable again", "http 500"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestLoopReregistersWhenForgotten(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	f.handle("sync", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 || n == 3 {
			jsonReply(404, `{"error":"unknown agent"}`)(w, r, n)
			return
		}
		jsonReply(200, `{"newTasks":[{"id":"t`+fmt.Sprint(n)+`","magnet":"magnet:?xt=urn:btih:x"}]}`)(w, r, n)
	})
	h := startLoop(t, f, harnessOpts{})
	waitUntil(t, "re-register and sync", func() bool { return len(h.agent.applied()) >= 1 })
	h.loop.SyncNow()
	waitUntil(t, "second re-register", func() bool { return len(h.agent.applied()) >= 2 })
	var got []string
	for _, n := range f.names() {
		if n == "register" || n == "sync" {
			got = append(got, n)
		}
	}
	if !slices.Equal(got[:6], []string{"register", "sync", "register", "sync", "sync", "register"}) {
		t.Errorf("calls = %v, want register, sync(404), register, sync, sync(404), register, ...", got)
	}
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestReadEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		max   int
		syncs int
		err   error
	}{
		{"sync event", "event: sync\ndata: {}\n\n", 1024, 1, errStreamEnded},
		{"sync without data", "event: sync\n\n", 1024, 1, errStreamEnded},
		{"wake event", "event:wake\n\n", 1024, 1, errStreamEnded},
		{"data sync", "data: sync\n\n", 1024, 1, errStreamEnded},
		{"message data sync", "event: message\ndata: sync\n\n", 1024, 1, errStreamEnded},
		{"comments only", ": keepalive\n\n:ping\n\n", 1024, 0, errStreamEnded},
		{"other event", "event: other\ndata: sync\n\n", 1024, 0, errStreamEnded},
		{"other data", "data: syncx\n\ndata: sync\ndata: more\n\n", 1024, 0, errStreamEnded},
		{"not dispatched without blank line", "event: sync\n", 1024, 0, errStreamEnded},
		{"crlf", "event: sync\r\n\r\nevent: sync\r\n\r\n", 1024, 2, errStreamEnded},
		{"cr", "event: sync\r\rx", 1024, 1, errStreamEnded},
		{"id and retry ignored", "id: 7\nretry: 1\nevent: sync\n\n", 1024, 1, errStreamEnded},
		{"no space after colon", "event:sync\ndata:x\n\n", 1024, 1, errStreamEnded},
		{"long line", "data: " + strings.Repeat("x", 200) + "\n\n", 64, 0, errEventTooLarge},
		{"long line without newline", strings.Repeat("y", 500), 64, 0, errEventTooLarge},
		{"long event", strings.Repeat("data: 0123456789\n", 10) + "\n", 64, 0, errEventTooLarge},
		{"events before the long one apply", "event: sync\n\ndata: " + strings.Repeat("x", 200), 64, 1, errEventTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			err := readEvents(strings.NewReader(tc.in), tc.max, func() { n++ })
			if !errors.Is(err, tc.err) {
				t.Errorf("readEvents() = %v, want %v", err, tc.err)
			}
			if n != tc.syncs {
				t.Errorf("readEvents() syncs = %d, want %d", n, tc.syncs)
			}
		})
	}
}

func FuzzReadEvents(f *testing.F) {
	for _, s := range []string{"event: sync\n\n", "data: sync\r\n\r\n", ": k\n", "event:\x00\n\n", strings.Repeat("data: x\n", 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n := 0
		err := readEvents(strings.NewReader(string(in)), 128, func() { n++ })
		if err == nil {
			t.Fatalf("readEvents returned nil, want a reason to stop")
		}
		if n > len(in)/2+1 {
			t.Fatalf("readEvents signalled %d syncs for %d bytes", n, len(in))
		}
	})
}

func TestLoopEventTriggersSync(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	push := make(chan string)
	f.handle("events", sseStream(push))
	h := startLoop(t, f, harnessOpts{})
	waitUntil(t, "first sync and event stream", func() bool { return f.count("sync") == 1 && f.count("events") == 1 })
	for i, ev := range []string{"event: sync\ndata: {}\n\n", ": keepalive\n\nevent: sync\n\n"} {
		push <- ev
		waitUntil(t, fmt.Sprintf("sync after event %d", i), func() bool { return f.count("sync") == 2+i })
	}
	if got := h.loop.Stats().Downlink; got != DownlinkEvents {
		t.Errorf("Stats().Downlink = %q, want %q", got, DownlinkEvents)
	}
	ev := f.callsNamed("events")[0]
	if ev.Method != http.MethodGet || ev.Query != "agentId="+testAgentID || ev.Header.Get("Accept") != "text/event-stream" ||
		ev.Header.Get("Authorization") != "Bearer "+testAPIKey || ev.Header.Get("User-Agent") != "torrentclaw/"+testVersion {
		t.Errorf("events request = %s %v", ev.Method, ev.Header)
	}
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestLoopEventsFallBackToLongPoll(t *testing.T) {
	tests := []struct {
		name       string
		events     func(http.ResponseWriter, *http.Request, int)
		minEvents  int
		exactOnce  bool
		wantLogged string
	}{
		{"stall after headers", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			io.WriteString(w, ": hello\n\n")
			w.(http.Flusher).Flush()
			hang(w, r, n)
		}, 1, false, "no data within the liveness timeout"},
		{"stall before headers", hang, 1, false, "no data within the liveness timeout"},
		{"server errors", jsonReply(503, `{"error":"busy"}`), maxEventFailures, false, "http 503"},
		{"not found", jsonReply(404, `{"error":"nope"}`), 1, true, "no event stream"},
		{"method not allowed", jsonReply(405, ``), 1, true, "no event stream"},
		{"not implemented", jsonReply(501, ``), 1, true, "no event stream"},
		{"html page", func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html></html>")
		}, 1, true, "no event stream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			f := newFakeOrigin(t)
			f.handle("events", tc.events)
			var wakeNext atomic.Bool
			syncsAtWake := make(chan int, 1)
			f.handle("wake", func(w http.ResponseWriter, r *http.Request, n int) {
				wake := wakeNext.Swap(false)
				if wake {
					syncsAtWake <- f.count("sync")
				}
				jsonReply(200, fmt.Sprintf(`{"wake":%v}`, wake))(w, r, n)
			})
			h := startLoop(t, f, harnessOpts{loop: func(o *LoopOptions) {
				if strings.HasPrefix(tc.name, "stall") {
					o.EventsIdleTimeout = 100 * time.Millisecond
				}
			}})
			waitUntil(t, "long poll", func() bool { return f.count("wake") >= 3 && f.count("sync") >= 1 })
			wakeNext.Store(true)
			before := <-syncsAtWake
			waitUntil(t, "sync after wake", func() bool { return f.count("sync") > before })
			if got := h.loop.Stats().Downlink; got != DownlinkLongPoll {
				t.Errorf("Stats().Downlink = %q, want %q", got, DownlinkLongPoll)
			}
			if wk := f.callsNamed("wake")[0]; wk.Method != http.MethodGet || wk.Query != "agentId="+testAgentID {
				t.Errorf("wake request = %s ?%s", wk.Method, wk.Query)
			}
			if n := f.count("events"); n < tc.minEvents || tc.exactOnce && n != 1 {
				t.Errorf("events attempts = %d, want >= %d (exactly once: %v)", n, tc.minEvents, tc.exactOnce)
			}
			wantLogged := []string{tc.wantLogged}
			if !tc.exactOnce {
				wantLogged = append(wantLogged, "keeps failing; falling back to long poll")
			}
			for _, want := range wantLogged {
				if !strings.Contains(h.logs.String(), want) {
					t.Errorf("logs lack %q", want)
				}
			}
			if err := h.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoopEventsRetriedAfterLongPoll(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	push := make(chan string)
	stream := sseStream(push)
	f.handle("events", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			jsonReply(404, ``)(w, r, n)
			return
		}
		stream(w, r, n)
	})
	f.handle("wake", jsonReply(200, `{"wake":false}`))
	h := startLoop(t, f, harnessOpts{loop: func(o *LoopOptions) { o.EventsRetry = 50 * time.Millisecond }})
	waitUntil(t, "event stream again", func() bool { return f.count("events") == 2 && f.count("wake") >= 1 })
	waitUntil(t, "downlink is events", func() bool { return h.loop.Stats().Downlink == DownlinkEvents })
	before := f.count("sync")
	push <- "event: sync\n\n"
	waitUntil(t, "sync after event", func() bool { return f.count("sync") > before })
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestLoopOversizedEventDropsConnection(t *testing.T) {
	tests := []struct {
		name string
		send string
	}{
		{"long line", "event: sync\ndata: " + strings.Repeat("x", 4000) + "\n\n"},
		{"long event", "event: sync\n" + strings.Repeat("data: "+strings.Repeat("x", 100)+"\n", 20) + "\n"},
		{"endless line", strings.Repeat("z", 1<<20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			f := newFakeOrigin(t)
			push := make(chan string, 1)
			stream := sseStream(push)
			f.handle("events", func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Content-Type", "text/event-stream")
					io.WriteString(w, tc.send)
					w.(http.Flusher).Flush()
					hang(w, r, n)
					return
				}
				stream(w, r, n)
			})
			h := startLoop(t, f, harnessOpts{loop: func(o *LoopOptions) { o.MaxEventBytes = 1024 }})
			waitUntil(t, "reconnect", func() bool { return f.count("events") >= 2 })
			// The reconnect resyncs (sync 2); the oversized event itself must
			// not have triggered anything.
			waitUntil(t, "resync", func() bool { return f.count("sync") == 2 })
			push <- "event: sync\n\n"
			waitUntil(t, "sync after event on the new connection", func() bool { return f.count("sync") == 3 })
			if !strings.Contains(h.logs.String(), "line or event over the size cap") {
				t.Errorf("logs lack the size cap message:\n%s", h.logs.String())
			}
			if err := h.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoopRevoked(t *testing.T) {
	tests := []struct {
		call string
		code int
	}{
		{"register", 401},
		{"sync", 403},
		{"sync", 410},
		{"status", 401},
		{"events", 401},
		{"wake", 403},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %d", tc.call, tc.code), func(t *testing.T) {
			checkGoroutines(t)
			f := newFakeOrigin(t)
			f.handle(tc.call, jsonReply(tc.code, `{"error":"api key `+testAPIKey+` revoked"}`))
			h := startLoop(t, f, harnessOpts{})
			h.loop.Report(StatusUpdate{TaskID: "t1", Status: StatusDownloading})
			err := h.wait(t) // Run stops by itself
			if !errors.Is(err, ErrRevoked) {
				t.Fatalf("Run() = %v, want ErrRevoked", err)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.code || se.Call != tc.call {
				t.Errorf("Run() = %#v, want a StatusError for %s %d", err, tc.call, tc.code)
			}
			msg := err.Error()
			if !strings.Contains(msg, "api key rejected") || strings.Contains(msg, testAPIKey) {
				t.Errorf("Run() error = %q, want a clear message without the key", msg)
			}
			if n := f.count("deregister"); n != 0 {
				t.Errorf("deregister calls = %d after revocation, want 0", n)
			}
			if st := h.loop.Stats(); st.Registered || st.LastError == "" {
				t.Errorf("Stats() after revocation = %+v", st)
			}
			if logs := h.logs.String(); strings.Contains(logs, testAPIKey) {
				t.Errorf("logs contain the api key:\n%s", logs)
			}
		})
	}
}

func TestLoopSurvivesMalformedReplies(t *testing.T) {
	good := `{"newTasks":[{"id":"good","magnet":"magnet:?xt=urn:btih:x"}]}`
	tests := []struct {
		name string
		body string
	}{
		{"html", "<html>502 Bad Gateway</html>"},
		{"empty", ""},
		{"array", "[1,2,3]"},
		{"truncated", `{"newTasks":[{"id":`},
		{"wrong types", `{"newTasks":"x","controls":7,"streamRequests":{"a":1},"streamSessions":true,"watching":"maybe"}`},
		{"unknown fields", `{"whatever":{"deep":[1,2,3]},"newTasks":[]}`},
		{"huge body", `{"pad":"` + strings.Repeat("p", 2<<20) + `"}`},
		{"deep nesting", strings.Repeat("[", 20000)},
		{"all entries malformed", `{"newTasks":[1,"x",null,{"id":""}],"controls":[{}],"streamSessions":[{"sessionId":"/"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			f := newFakeOrigin(t)
			f.handle("sync", func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					jsonReply(200, tc.body)(w, r, n)
					return
				}
				jsonReply(200, good)(w, r, n)
			})
			h := startLoop(t, f, harnessOpts{loop: func(o *LoopOptions) { o.SyncInterval = 10 * time.Millisecond }})
			waitUntil(t, "good reply applied", func() bool { return len(h.agent.applied()) >= 1 })
			got := h.agent.applied()[0]
			if len(got.NewTasks) != 1 || got.NewTasks[0].ID != "good" {
				t.Errorf("first applied reply = %+v, want the good task", got)
			}
			if err := h.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLoopMalformedEntrySkippedOthersApplied(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	bad := tok("bad-entry")
	f.handle("sync", seqReply(`{
		"newTasks":[{"id":"a","magnet":"magnet:?xt=urn:btih:a"},{"id":"b","magnet":"m","fileIndex":"`+bad+`"},{"id":"c","infoHash":"`+strings.Repeat("c", 40)+`"}],
		"controls":[{"action":"nuke","taskId":"a","streamToken":"`+bad+`"},{"action":"pause","taskId":"c"}],
		"streamRequests":[{"taskId":"a","streamToken":"`+bad+`x!"},{"taskId":"c"}],
		"streamSessions":[{"sessionId":"s1","taskId":"a","startSec":"0"},{"sessionId":"s2","taskId":"c","startSec":5}]}`, `{}`))
	h := startLoop(t, f, harnessOpts{})
	waitUntil(t, "apply", func() bool { return len(h.agent.applied()) == 1 })
	got := h.agent.applied()[0]
	ids := func(n int, id func(int) string) []string {
		var out []string
		for i := range n {
			out = append(out, id(i))
		}
		return out
	}
	checks := []struct {
		field string
		got   []string
		want  []string
	}{
		{"newTasks", ids(len(got.NewTasks), func(i int) string { return got.NewTasks[i].ID }), []string{"a", "c"}},
		{"controls", ids(len(got.Controls), func(i int) string { return got.Controls[i].TaskID }), []string{"c"}},
		{"streamRequests", ids(len(got.StreamRequests), func(i int) string { return got.StreamRequests[i].TaskID }), []string{"c"}},
		{"streamSessions", ids(len(got.StreamSessions), func(i int) string { return got.StreamSessions[i].SessionID }), []string{"s2"}},
	}
	for _, c := range checks {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("applied %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	logs := h.logs.String()
	for _, want := range []string{"field=newTasks index=1", "field=controls index=0", "field=streamRequests index=0", "field=streamSessions index=0"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, bad) {
		t.Errorf("logs contain a token from a malformed entry:\n%s", logs)
	}
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestLoopStatusBatchesNothingLost(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	f.handle("status", func(w http.ResponseWriter, r *http.Request, n int) {
		switch {
		case n <= 2:
			jsonReply(503, `{"error":"busy"}`)(w, r, n)
		case n == 3:
			hang(w, r, n)
		default:
			jsonReply(200, `{"results":[{"paused":true}]}`)(w, r, n)
		}
	})
	h := startLoop(t, f, harnessOpts{client: func(o *Options) { o.Timeout = 200 * time.Millisecond }})
	h.loop.Report(StatusUpdate{TaskID: "a", Progress: 10})
	h.loop.Report(StatusUpdate{TaskID: "b", Progress: 20})
	h.loop.Report(StatusUpdate{TaskID: ""}) // dropped
	waitUntil(t, "first status attempt", func() bool { return f.count("status") >= 1 })
	h.loop.Report(StatusUpdate{TaskID: "a", Progress: 50})
	h.loop.Report(StatusUpdate{TaskID: "c", Progress: 5})
	latest := map[string]float64{}
	waitUntil(t, "all updates delivered", func() bool {
		clear(latest)
		for _, c := range f.callsNamed("status") {
			if c.N < 4 {
				continue
			}
			var req StatusRequest
			if err := json.Unmarshal(c.Body, &req); err != nil {
				t.Fatalf("status body: %v", err)
			}
			for _, u := range req.Updates {
				latest[u.TaskID] = u.Progress
			}
		}
		return len(latest) == 3 && latest["a"] == 50
	})
	if want := map[string]float64{"a": 50, "b": 20, "c": 5}; !reflect.DeepEqual(latest, want) {
		t.Errorf("delivered updates = %v, want %v", latest, want)
	}
	for _, c := range f.callsNamed("status") {
		if strings.Contains(string(c.Body), `"taskId":""`) {
			t.Errorf("update without task id was sent: %s", c.Body)
		}
	}
	waitUntil(t, "status results applied", func() bool { return len(h.agent.statusResults()) >= 1 })
	if r := h.agent.statusResults()[0]; !r.Paused || r.TaskID == "" {
		t.Errorf("status result = %+v, want paused with a task id", r)
	}
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestLoopFinalStatusFlush(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	h := startLoop(t, f, harnessOpts{loop: func(o *LoopOptions) { o.StatusInterval = time.Hour }})
	waitUntil(t, "sync", func() bool { return f.count("sync") >= 1 })
	h.loop.Report(StatusUpdate{TaskID: "done", Status: StatusCompleted, Progress: 100})
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
	names := slices.DeleteFunc(f.names(), func(n string) bool { return n == "events" || n == "wake" })
	if n := len(names); n < 2 || names[n-2] != "status" || names[n-1] != "deregister" {
		t.Fatalf("calls = %v, want ..., status, deregister", names)
	}
	if body := string(f.callsNamed("status")[0].Body); !strings.Contains(body, `"taskId":"done"`) {
		t.Errorf("final status body = %s", body)
	}
}

func TestLoopStatusBatchRejectedIsDropped(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	f.handle("status", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			jsonReply(422, `{"error":"bad update"}`)(w, r, n)
			return
		}
		jsonReply(200, `{"results":[]}`)(w, r, n)
	})
	h := startLoop(t, f, harnessOpts{})
	h.loop.Report(StatusUpdate{TaskID: "x"})
	waitUntil(t, "rejected batch", func() bool { return f.count("status") == 1 })
	h.loop.Report(StatusUpdate{TaskID: "y"})
	waitUntil(t, "next batch", func() bool { return f.count("status") == 2 })
	if body := string(f.callsNamed("status")[1].Body); strings.Contains(body, `"x"`) || !strings.Contains(body, `"y"`) {
		t.Errorf("batch after a rejected one = %s, want only y", body)
	}
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestLoopTokensReachAgentAndNeverLogs runs a session where tokens arrive by
// every carrier and secrets appear in error answers, with all log output
// captured at debug level: the agent must get every token, the logs none.
func TestLoopTokensReachAgentAndNeverLogs(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	secrets := []string{testAPIKey}
	tk := func(n string) string { s := tok(n); secrets = append(secrets, s); return s }
	tNew, tCtl, tReq, tSess, tStat, tBad, tErr := tk("new"), tk("ctl"), tk("req"), tk("sess"), tk("stat"), tk("bad"), tk("err")
	expiry := "2030-01-02T03:04:05Z"

	f.handle("register", func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			jsonReply(500, `{"error":"auth backend said: Bearer `+testAPIKey+` / token `+tErr+` invalid","details":{"token":"`+tErr+`"}}`)(w, r, n)
			return
		}
		jsonReply(200, `{"success":true}`)(w, r, n)
	})
	f.handle("sync", func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			jsonReply(200, `{
				"newTasks":[{"id":"t1","magnet":"magnet:?xt=urn:btih:x","mode":"stream","streamToken":"`+tNew+`","streamTokenExpiresAt":"`+expiry+`"},
				            {"id":"t9","magnet":"m","fileIndex":{"x":"`+tBad+`"},"streamToken":"`+tBad+`"}],
				"controls":[{"action":"stream","taskId":"t2","streamToken":"`+tCtl+`","streamTokenExpiresAt":"`+expiry+`"}],
				"streamRequests":[{"taskId":"t3","streamToken":"`+tReq+`","streamTokenExpiresAt":"`+expiry+`"}],
				"streamSessions":[{"sessionId":"s4","taskId":"t4","streamToken":"`+tSess+`","streamTokenExpiresAt":"`+expiry+`"}]}`)(w, r, n)
		case 2:
			jsonReply(401, `{"error":"key `+testAPIKey+` revoked"}`)(w, r, n)
		}
	})
	// The skipped t9 is reported as failed too, so answer by position:
	// only t5's update gets the stream request.
	f.handle("status", func(w http.ResponseWriter, r *http.Request, n int) {
		var req StatusRequest
		calls := f.callsNamed("status") // the fake read the body already
		_ = json.Unmarshal(calls[n-1].Body, &req)
		results := make([]string, len(req.Updates))
		for i, u := range req.Updates {
			results[i] = `{}`
			if u.TaskID == "t5" {
				results[i] = `{"streamRequested":true,"streamToken":"` + tStat + `","streamTokenExpiresAt":"` + expiry + `"}`
			}
		}
		jsonReply(200, `{"results":[`+strings.Join(results, ",")+`]}`)(w, r, n)
	})
	h := startLoop(t, f, harnessOpts{})

	waitUntil(t, "sync reply applied", func() bool { return len(h.agent.applied()) == 1 })
	streamURL := StreamURLs{LAN: "http://192.168.1.5:11818/stream?id=t5&t=" + tStat}.Encode()
	h.loop.Report(StatusUpdate{TaskID: "t5", Status: StatusDownloading, StreamURL: streamURL, StreamReady: true})
	waitUntil(t, "status results applied", func() bool { return len(h.agent.statusResults()) == 1 })
	h.loop.SyncNow()
	err := h.wait(t)
	if !errors.Is(err, ErrRevoked) {
		t.Fatalf("Run() = %v, want ErrRevoked", err)
	}

	r := h.agent.applied()[0]
	want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	got := []struct {
		carrier string
		token   string
		exp     time.Time
		wantTok string
	}{
		{"newTasks", r.NewTasks[0].StreamToken, r.NewTasks[0].StreamTokenExpiresAt, tNew},
		{"controls", r.Controls[0].StreamToken, r.Controls[0].StreamTokenExpiresAt, tCtl},
		{"streamRequests", r.StreamRequests[0].StreamToken, r.StreamRequests[0].StreamTokenExpiresAt, tReq},
		{"streamSessions", r.StreamSessions[0].StreamToken, r.StreamSessions[0].StreamTokenExpiresAt, tSess},
		{"status results", h.agent.statusResults()[0].StreamToken, h.agent.statusResults()[0].StreamTokenExpiresAt, tStat},
	}
	for _, g := range got {
		if g.token != g.wantTok || !g.exp.Equal(want) {
			t.Errorf("%s: token ok %v, expiry %v; want the token and %v", g.carrier, g.token == g.wantTok, g.exp, want)
		}
	}
	if res := h.agent.statusResults()[0]; res.TaskID != "t5" || !res.StreamRequested {
		t.Errorf("status result = task %q requested %v, want t5 true", res.TaskID, res.StreamRequested)
	}
	if len(r.NewTasks) != 1 {
		t.Errorf("new tasks applied = %d, want 1 (the malformed one skipped)", len(r.NewTasks))
	}

	logs := h.logs.String()
	if !strings.Contains(logs, "registered with origin") || !strings.Contains(logs, "origin reply entry skipped") ||
		!strings.Contains(logs, "REDACTED") {
		t.Errorf("logs lack expected lines:\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain secret %.8s…:\n%s", s, logs)
		}
		if strings.Contains(err.Error(), s) {
			t.Errorf("Run error contains secret %.8s…: %v", s, err)
		}
	}
	// The status update carried a token-bearing URL; the origin got it.
	var statusBodies string
	for _, c := range f.callsNamed("status") {
		statusBodies += string(c.Body)
	}
	if !strings.Contains(statusBodies, tStat) {
		t.Errorf("status body lacks the stream url")
	}
}

func TestLoopStopsPromptlyWhenOriginHangs(t *testing.T) {
	checkGoroutines(t)
	f := newFakeOrigin(t)
	f.handle("deregister", hang)
	f.handle("events", func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		hang(w, r, n)
	})
	h := startLoop(t, f, harnessOpts{loop: func(o *LoopOptions) { o.ShutdownTimeout = 100 * time.Millisecond }})
	waitUntil(t, "sync and events", func() bool { return f.count("sync") >= 1 && f.count("events") >= 1 })
	f.handle("sync", hang)
	h.loop.SyncNow()
	waitUntil(t, "hanging sync", func() bool { return f.count("sync") >= 2 })
	start := time.Now()
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %v to stop, want well under the call timeout", d)
	}
	if !strings.Contains(h.logs.String(), "deregister failed") {
		t.Errorf("logs lack the deregister failure:\n%s", h.logs.String())
	}
}
