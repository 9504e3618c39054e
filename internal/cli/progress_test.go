package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
)

// The line never exceeds the width it is given, at any width, and keeps the
// peers as long as there is room.
func TestFitLine(t *testing.T) {
	info := control.TaskInfo{State: "downloading", Progress: 42.5, TotalBytes: 1500 << 20, SpeedBps: 3 << 20,
		UploadSpeedBps: 200 << 10, Peers: 4, KnownPeers: 37, BufferedSeconds: 95, ETASeconds: 300}
	for _, width := range []int{10, 20, 39, 40, 60, 79, 120, 200} {
		line := fitLine(info, width)
		if n := len([]rune(line)); n > width {
			t.Errorf("fitLine(width %d) = %q, %d runes", width, line, n)
		}
		if strings.ContainsAny(line, "\n\r") {
			t.Errorf("fitLine(width %d) = %q has a line break", width, line)
		}
		if width >= 30 && !strings.Contains(line, "peers 4/37") {
			t.Errorf("fitLine(width %d) = %q, want the peers", width, line)
		}
		if width >= 120 && (!strings.Contains(line, "peers 4/37") || !strings.Contains(line, "1m35s buffered") || !strings.HasPrefix(line, "[")) {
			t.Errorf("fitLine(width %d) = %q, want a bar, peers and the buffer", width, line)
		}
	}
	// Unknown bitrate: the buffer in bytes.
	info.BufferedSeconds, info.BufferedBytes = 0, 12<<20
	if line := fitLine(info, 200); !strings.Contains(line, "12.0 MiB buffered") || !strings.Contains(line, "up 200.0 KiB/s") {
		t.Errorf("fitLine = %q, want the buffer in bytes and the upload speed", line)
	}
}

// With no peer for hintAfter, the hint is printed once, on its own line.
func TestProgressNoPeerHint(t *testing.T) {
	var b strings.Builder
	calls := 0
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &progress{w: &b, terminal: true, width: func() int { return 80 }, hintAfter: 10 * time.Second,
		hint: func() string { calls++; return "no peer can be found" }, now: func() time.Time { return clock }}
	info := control.TaskInfo{State: "resolving"}
	p.update(info)
	clock = clock.Add(9 * time.Second)
	p.update(info)
	if calls != 0 {
		t.Fatalf("hint after 9s of 10: %q", b.String())
	}
	clock = clock.Add(time.Second)
	p.update(info)
	p.update(info)
	if calls != 1 || strings.Count(b.String(), "hint: no peer can be found\n") != 1 {
		t.Errorf("hint printed %d times (%d calls): %q", strings.Count(b.String(), "hint:"), calls, b.String())
	}
	// A peer resets it; none is printed while peers are known.
	b.Reset()
	p2 := &progress{w: &b, terminal: true, hintAfter: 0, hint: func() string { return "x" }}
	p2.update(control.TaskInfo{State: "downloading", TotalBytes: 1, KnownPeers: 3})
	if strings.Contains(b.String(), "hint") {
		t.Errorf("hint with known peers: %q", b.String())
	}
}

func TestNoPeerHint(t *testing.T) {
	off := config.Default()
	off.Torrent.DHT, off.Torrent.Trackers = false, nil
	on := config.Default()
	tests := []struct {
		name   string
		cfg    config.Config
		source string
		cannot bool
	}{
		{"dht off, bare magnet", off, "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567", true},
		{"dht off, infohash", off, "0123456789abcdef0123456789abcdef01234567", true},
		{"dht off, tracker in magnet", off, "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&tr=http%3A%2F%2Ft.example%2Fa", false},
		{"dht off, only a tracker we cannot use", off, "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&tr=gopher%3A%2F%2Ft.example", true},
		{"dht off, x.pe", off, "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&x.pe=127.0.0.1:6881", false},
		{"dht on", on, "0123456789abcdef0123456789abcdef01234567", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := noPeerHint(tc.cfg, tc.source)
			if strings.Contains(got, "DHT is off") != tc.cannot {
				t.Errorf("noPeerHint() = %q, want the no-way-to-find-peers hint: %v", got, tc.cannot)
			}
		})
	}
}

// status shows peers and upload, and --watch redraws until Ctrl-C.
func TestStatusWatchShowsPeers(t *testing.T) {
	fd := newFakeDaemon()
	env, out, _ := testEnv(serve(t, fd))
	if _, err := runStreamOnce(t, env); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- runStatus(ctx, &statusOptions{Out: out, Client: env.Client, Watch: time.Millisecond})
	}()
	deadline := time.After(2 * time.Minute) // a hang guard: generous for a loaded machine
	for strings.Count(out.String(), "PEERS") < 2 {
		select {
		case <-deadline:
			t.Fatalf("status --watch did not redraw: %q", out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runStatus(--watch) after Ctrl-C = %v", err)
	}
	if !strings.Contains(out.String(), "UP") {
		t.Errorf("status table lacks the upload column: %q", out.String())
	}
}

// runStreamOnce adds one task to the fake daemon through stream.
func runStreamOnce(t *testing.T, env *Env) (string, error) {
	t.Helper()
	opts := streamOpts(env, testMagnet)
	return "", runStream(t.Context(), opts)
}
