package engine_test

import (
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
)

// TestRealClientAria2SlowRead reads a file from an aria2 seeder alone, with the engine's
// download limited to 1 MiB/s, so that the connection spends most of its time with the
// engine's requests queued and nothing else to say. aria2 1.36 closes a connection on which
// it receives two keep-alives within 5 s (its flooding check); an engine that wrote one
// every 250 ms on a quiet connection lost aria2 a few seconds into the read, and with no
// other seeder the read then stalled for good (the test fails with the read stalled).
func TestRealClientAria2SlowRead(t *testing.T) {
	if !clienttest.Isolate(t) {
		return
	}
	clienttest.Need(t, "aria2c")
	const size, pieceLength = 12 << 20, 1 << 20
	src, path, want := realSource(t, size, 21)
	torrentPath, ih := writeRealTorrent(t, t.TempDir(), path, pieceLength, func(string) string { return "" })
	cl := clienttest.StartAria2(t, clienttest.Options{})
	cl.AddTorrent(t, torrentPath, src)
	clienttest.WaitSeeding(t, cl, ih, 2*time.Minute)
	_, r, _ := limitedTask(t, torrentPath, cl.PeerAddr().String())
	t.Logf("full read of %d MiB from aria2 at 1 MiB/s: %v", size>>20, fullRead(t, r, cl, want))
}
