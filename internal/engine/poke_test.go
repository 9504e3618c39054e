package engine_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
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

	// The first read proves the connection is up; it is the one that must survive.
	conn := firstReadConn(t, task, r, cl, want)

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
		seekRead(t, r, cl, want, mib<<20+300<<10)
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

// TestPokePulseRestoresPriorities puts a task in urgent mode (a read after a seek, from an
// in-process seeder slowed to 32 KiB/s so that the piece stays missing) and pokes it: the
// poke must pulse a piece (the seeder has every piece and urgent mode holds all but the
// waited-for one back), and every missing piece's priority in the torrent library and in the
// task's ledger must be what it was before the poke.
func TestPokePulseRestoresPriorities(t *testing.T) {
	const size, pieceLength = 8 << 20, 256 << 10
	src, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mkv", size, 31)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLength, UploadRateBytes: 32 << 10})
	si := seeder.Add(t, src)
	task, r := enginetest.OpenStream(t, enginetest.NewEngine(t), si.Magnet)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r.SetContext(ctx)
	const seekTo = 5<<20 + 1000
	if _, err := r.Seek(seekTo, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1) // buffered: the reader never waits for the test
	go func() {
		_, err := r.Read(make([]byte, 1024))
		done <- err
	}()
	const waited, held = seekTo / pieceLength, 3 << 20 / pieceLength // held: no claim wants it while urgent
	// The engine's bitrate probe (duration.go) reads the head of the file through a library
	// reader of its own, which makes piece 0 Now until it is verified, urgent mode or not.
	// It starts once the file is selected, and may do so after the read below: wait for it
	// too, or piece 0 changes between the two snapshots (seen once in CI).
	enginetest.WaitFor(t, 30*time.Second, "the read to put the task in urgent mode, its piece wanted, the others held back, and the probe's piece 0 wanted", func() bool {
		return engine.Urgent(task) && engine.LibraryPiecePriority(task, waited) == engine.PrioNow &&
			engine.LibraryPiecePriority(task, held) == engine.PrioNone &&
			(engine.PieceComplete(task, 0) || engine.LibraryPiecePriority(task, 0) == engine.PrioNow)
	})

	const pieces = size / pieceLength
	library := func() map[int]int {
		m := make(map[int]int)
		for p := range pieces {
			m[p] = engine.LibraryPiecePriority(task, p)
		}
		return m
	}
	libBefore, ledgerBefore := library(), engine.PiecePriorities(task)
	if !engine.Poke(task) {
		t.Fatal("the poke toggled uploads; want it to pulse a piece urgent mode holds back")
	}
	libAfter, ledgerAfter := library(), engine.PiecePriorities(task)
	for p := range pieces {
		if engine.PieceComplete(task, p) {
			continue // a completed piece's priority drops to none on its own
		}
		if libAfter[p] != libBefore[p] {
			t.Errorf("piece %d: library priority %d after the poke, %d before", p, libAfter[p], libBefore[p])
		}
		if ledgerAfter[p] != ledgerBefore[p] {
			t.Errorf("piece %d: ledger priority %d after the poke, %d before", p, ledgerAfter[p], ledgerBefore[p])
		}
	}
	if libAfter[waited] != engine.PrioNow && !engine.PieceComplete(task, waited) {
		t.Errorf("the piece the read waits for (%d) has priority %d after the poke, want %d", waited, libAfter[waited], engine.PrioNow)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("read: %v", err)
	}
}
