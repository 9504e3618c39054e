package engine_test

import (
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// idleShareMax is the most of a download a slow seeder's connection may spend with nothing
// requested while the task still lacked pieces it has (idlewake.go). With the waking
// switched off (SetIdleWake), aria2 was idle on 82 and 87 % of the ticks in two runs; with
// it on, 1–5 %.
const idleShareMax = 0.25

// TestRealClientIdleSeedersWoken downloads (no stream, no reader) a 64 MiB file with 4 MiB
// pieces from three real seeders limited to 8, 1 and 1 MB/s (qBittorrent, aria2,
// qBittorrent), the mixed swarm of the benchmarks without its Transmission, whose first
// choke lasts seconds. The library moves a slow seeder's requests to the fast one when the
// fast one runs out of work; the slow peer rejects the cancels, and nothing made it ask
// again. Each slow seeder's connection must spend at most idleShareMax of the download
// idle, and the file must match.
func TestRealClientIdleSeedersWoken(t *testing.T) {
	if !clienttest.Isolate(t) {
		return
	}
	idleSeeders(t, true)
}

func idleSeeders(t *testing.T, wake bool) {
	defer engine.SetIdleWake(wake)()
	const size, pieceLength = 64 << 20, 4 << 20
	src, path, _ := realSource(t, size, 41)
	torrentPath, ih := writeRealTorrent(t, t.TempDir(), path, pieceLength, func(string) string { return "" })
	seeders := []struct {
		start startClient
		rate  int64
	}{
		{realClients[0].start, 8_000_000}, // qBittorrent
		{realClients[2].start, 1_000_000}, // aria2
		{realClients[0].start, 1_000_000}, // qBittorrent
	}
	var peers []string
	slow := map[string]string{} // address → client, for the 1 MB/s seeders
	for _, s := range seeders {
		cl := s.start(t, clienttest.Options{UploadRateBytes: s.rate})
		cl.AddTorrent(t, torrentPath, src)
		clienttest.WaitSeeding(t, cl, ih, 2*time.Minute)
		peers = append(peers, cl.PeerAddr().String())
		if s.rate < 8_000_000 {
			slow[cl.PeerAddr().String()] = cl.Name()
		}
	}
	e := enginetest.NewEngine(t, func(o *engine.Options) { *o = realEngineOptions(t) })
	task, err := e.Add(t.Context(), engine.AddSpec{Source: torrentPath, FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.AddPeers(peers...); err != nil {
		t.Fatal(err)
	}
	// The idle watch's counts of each connection, as last seen: a connection's counts go
	// with it when it closes.
	seen := map[string][2]int{}
	enginetest.WaitFor(t, 5*time.Minute, "the download to complete", func() bool {
		for a, c := range engine.IdleTicks(e) {
			seen[a] = c
		}
		st := task.Status()
		return st.PiecesTotal > 0 && st.PiecesComplete == st.PiecesTotal
	})
	local, err := task.LocalPath(0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := enginetest.SHA256File(t, local), enginetest.SHA256File(t, path); got != want {
		t.Fatalf("downloaded file's sha256 %s, want %s", got, want)
	}
	for addr, name := range slow {
		c, ok := seen[addr]
		if !ok || c[0] < 10 {
			t.Logf("%s at %s: idle watch saw its connection on %d ticks, too few to judge", name, addr, c[0])
			continue
		}
		share := float64(c[1]) / float64(c[0])
		t.Logf("%s at %s (1 MB/s): idle on %d of %d ticks (%.0f %%), waking %v", name, addr, c[1], c[0], 100*share, wake)
		if share > idleShareMax {
			t.Errorf("%s at %s was idle for %.0f %% of the download, want at most %.0f %%", name, addr, 100*share, 100*idleShareMax)
		}
	}
}
