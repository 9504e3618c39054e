package engine_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/engine"
)

// pokeEvery is how often the poke tests poke: faster than urgent mode does (urgentQuiet,
// 250 ms), so that several pokes fall in each of aria2's 5 s flooding windows.
const pokeEvery = 100 * time.Millisecond

// TestRealClientPokedSeeks has each of aria2 and qBittorrent seed a 32 MiB file (1 MiB
// pieces) to an engine limited to 1 MiB/s, which reads 256 KiB at eight offsets in pieces not
// downloaded yet, so that every read waits in urgent mode, while the task is poked every
// pokeEvery, as urgent mode pokes while a reader waits and no block arrives. Every read must
// be byte-identical, some pokes must have pulsed a piece (urgent mode's way of waking idle
// connections, see Task.poke), and the connection the reads started on must still be up at
// the end: aria2 1.36 closes a connection on which it counts two keep-alives (or two
// choke/unchoke changes) within 5 s, and a poke must not look like that to any peer.
func TestRealClientPokedSeeks(t *testing.T) {
	if !clienttest.Isolate(t) {
		return
	}
	for _, c := range realClients {
		if c.name == "transmission" {
			continue // choked for up to 10 s by its rechoke; pokes change nothing there
		}
		t.Run(c.name, func(t *testing.T) { pokedSeeks(t, c.start) })
	}
}

func pokedSeeks(t *testing.T, start startClient) {
	const size, pieceLength = 32 << 20, 1 << 20
	src, path, want := realSource(t, size, 23)
	torrentPath, ih := writeRealTorrent(t, t.TempDir(), path, pieceLength, func(string) string { return "" })
	cl := start(t, clienttest.Options{})
	cl.AddTorrent(t, torrentPath, src)
	clienttest.WaitSeeding(t, cl, ih, 2*time.Minute)
	task, r, _ := limitedTask(t, torrentPath, cl.PeerAddr().String())

	read := func(off int64) {
		got := make([]byte, realSeekRead)
		step(t, r, cl, "read", func() {
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r, got); err != nil {
				t.Fatalf("read at %d: %v", off, err)
			}
		})
		if !bytes.Equal(got, want[off:off+realSeekRead]) {
			t.Fatalf("read at %d: bytes differ from the file", off)
		}
	}
	// The first read proves the connection is up; it is the one that must survive.
	read(0)
	conn := engine.PeerConnTo(task, cl.PeerAddr().String())
	if conn == nil {
		t.Fatalf("no connection to %s at %s after the first read", cl.Name(), cl.PeerAddr())
	}

	stop := make(chan struct{})
	type count struct{ pokes, pulses int }
	done := make(chan count)
	go func() {
		tk := time.NewTicker(pokeEvery)
		defer tk.Stop()
		var n count
		for {
			select {
			case <-stop:
				done <- n
				return
			case <-tk.C:
				n.pokes++
				if engine.Poke(task) {
					n.pulses++
				}
			}
		}
	}()
	// Far apart and backwards, so that no read finds its piece downloaded by the readahead
	// of the one before.
	for _, mib := range []int64{29, 21, 13, 5, 25, 17, 9, 3} {
		read(mib<<20 + 300<<10)
	}
	close(stop)
	n := <-done
	if !engine.ConnAlive(task, conn) {
		t.Fatalf("%s closed the connection during %d pokes (one every %v)\n%s", cl.Name(), n.pokes, pokeEvery, cl.LogTail())
	}
	if n.pulses == 0 {
		t.Fatalf("none of %d pokes pulsed a piece: every one toggled uploads", n.pokes)
	}
	t.Logf("%d pokes, %d of them pulsed a piece; %s's connection stayed up", n.pokes, n.pulses, cl.Name())
}
