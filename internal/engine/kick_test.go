package engine_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestRealClientKickedSeeks has each real client seed a 32 MiB file (1 MiB pieces) at 2 MB/s
// to an engine that streams it: a first read starts the background download, whose requests
// queue on the connection, then reads of 256 KiB far apart and backwards jump to pieces
// nobody asked for yet. Those seeks kick (kick.go): every outstanding request is cancelled,
// the client must answer each cancel (with a reject or the block), and the connection must
// then go on serving the reads. Every read must be byte-identical, at least one seek must
// have kicked, and the connection the reads started on must still be up at the end (a client
// that left our cancels unanswered would leave the connection asking for nothing until the
// peer watchdog closed it as stalled).
func TestRealClientKickedSeeks(t *testing.T) {
	if !clienttest.Isolate(t) {
		return
	}
	for _, c := range realClients {
		t.Run(c.name, func(t *testing.T) { kickedSeeks(t, c.start) })
	}
}

// kickBehindMin is how many requests, at least, a kick must send before the peer answers its
// cancels: a quarter of one 1 MiB piece's blocks.
const kickBehindMin = 16

// anyCeiling reports whether a connection of RequestCeilings has a ceiling.
func anyCeiling(ceilings [][3]int) bool {
	for _, c := range ceilings {
		if c[0] > 0 {
			return true
		}
	}
	return false
}

func kickedSeeks(t *testing.T, start startClient) {
	const size, pieceLength = 32 << 20, 1 << 20
	src, path, want := realSource(t, size, 37)
	torrentPath, ih := writeRealTorrent(t, t.TempDir(), path, pieceLength, func(string) string { return "" })
	cl := start(t, clienttest.Options{UploadRateBytes: 2_000_000})
	cl.AddTorrent(t, torrentPath, src)
	clienttest.WaitSeeding(t, cl, ih, 2*time.Minute)
	e := enginetest.NewEngine(t, func(o *engine.Options) { *o = realEngineOptions(t) })
	task, r := enginetest.OpenStream(t, e, torrentPath, cl.PeerAddr().String())

	conn := firstReadConn(t, task, r, cl, want)
	// The seeks start once the connection's rate has set its request ceiling, as it has in
	// any stream from a rate-limited peer after a second or two (window.go).
	for deadline := time.Now().Add(realStepTimeout); !anyCeiling(engine.RequestCeilings(e)); {
		if time.Now().After(deadline) {
			t.Fatalf("no request ceiling after %v of streaming from %s at 2 MB/s", realStepTimeout, cl.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
	seeks := 0
	for _, mib := range []int64{30, 26, 22, 18, 14, 10} {
		seekRead(t, r, cl, want, mib<<20+300<<10)
		seeks++
	}
	// The count behind a kick ends at the first block or reject read after it, and the
	// library queues the cancels in one call and the new requests in its writer's next
	// update: a block already on its way, or the answers to cancels flushed before that
	// update, can come first. On a busy machine that happened to every kick of a run with one kick. So more
	// seeks follow until one kick's requests beat the answers; without the window beside the
	// cancels (window.go) none does: the library then asks for nothing until answers come.
	for _, mib := range []int64{28, 24, 20, 16, 12, 8} {
		if engine.SentBehindKick(e) >= kickBehindMin {
			break
		}
		seekRead(t, r, cl, want, mib<<20+700<<10)
		seeks++
	}
	kicks := engine.Kicks(task)
	if kicks == 0 {
		t.Fatalf("no seek kicked: the background download never had %s's connection busy", cl.Name())
	}
	// The new piece's requests go out right behind the cancels, under the ceiling too: the
	// window must not close on the first of them while the cancels are unanswered.
	if behind := engine.SentBehindKick(e); behind < kickBehindMin {
		t.Errorf("at most %d requests went out behind a kick's cancels before %s answered one, want %d or more (a piece is 64 blocks)", behind, cl.Name(), kickBehindMin)
	}
	if !engine.ConnAlive(task, conn) {
		t.Fatalf("the connection to %s was replaced during %d kicked seeks\n%s", cl.Name(), kicks, cl.LogTail())
	}
	t.Logf("%d of %d seeks kicked, up to %d requests behind a kick's cancels; %s's connection stayed up", kicks, seeks, engine.SentBehindKick(e), cl.Name())
}

// TestRealClientStalledReadKicks: a sequential read that stalls behind a queue of requests
// for other pieces kicks as a seek does. A seeder limited to 128 KiB/s (qBittorrent and
// aria2 serve requests in the order they came) gets the engine's first batch of requests
// as soon as they connect: the file's head and tail, about 2 MiB, 16 s of its upload. A
// player then reads the file from the start. Without the kick its reads past the first
// 512 KiB waited for the tail's pieces queued ahead of them (22 other pieces came first
// from qBittorrent and from aria2; a raw /watch playback stood still for a minute that
// way); with it, by the time the reader has its first MiB, few pieces besides those have
// come. The bytes must match.
func TestRealClientStalledReadKicks(t *testing.T) {
	if !clienttest.Isolate(t) {
		return
	}
	for _, c := range realClients {
		// Transmission 3.00 sent 23 other pieces before the first MiB with the stall kick
		// too (one run; the kick came, and the read took 20 s). It moves requests into its
		// send buffer, which it sizes to 15 s of its upload, and a cancel removes a
		// request only from its queue (docs/benchmarks.md). Its bytes are still checked.
		bounded := c.name != "transmission"
		t.Run(c.name, func(t *testing.T) { stalledReadKicks(t, c.start, bounded) })
	}
}

func stalledReadKicks(t *testing.T, start startClient, bounded bool) {
	const size, pieceLength, read = 8 << 20, 64 << 10, 1 << 20
	src, path, want := realSource(t, size, 41)
	torrentPath, ih := writeRealTorrent(t, t.TempDir(), path, pieceLength, func(string) string { return "" })
	cl := start(t, clienttest.Options{UploadRateBytes: 128 << 10})
	cl.AddTorrent(t, torrentPath, src)
	clienttest.WaitSeeding(t, cl, ih, 2*time.Minute)
	e := enginetest.NewEngine(t, func(o *engine.Options) { *o = realEngineOptions(t) })
	task := addStream(t, e, torrentPath)
	if err := task.AddPeers(cl.PeerAddr().String()); err != nil {
		t.Fatal(err)
	}
	enginetest.WaitFor(t, realStepTimeout, "the first piece from "+cl.Name(), func() bool { return engine.PieceComplete(task, 0) })
	r := openFile(t, task, t.Context(), -1)
	got := make([]byte, read)
	step(t, r, cl, "read the first MiB", func() {
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(got, want[:read]) {
		t.Fatal("the first MiB differs from the file's")
	}
	others := 0
	for p := read / pieceLength; p < size/pieceLength; p++ {
		if engine.PieceComplete(task, p) {
			others++
		}
	}
	kicks := engine.Kicks(task)
	t.Logf("%d kicks; %d pieces besides the first MiB's 16 had come", kicks, others)
	// Without the kick: no kick and 22 others (one run); with it, 3–8 (eight runs, the
	// most with two CPU hogs beside it under -race).
	if kicks == 0 {
		t.Error("no read kicked")
	}
	if bounded && others > stalledReadOthersMax {
		t.Errorf("%d pieces besides the first MiB's had come by the time it was read, want at most %d: the reads waited behind the queue", others, stalledReadOthersMax)
	}
}

// stalledReadOthersMax is how many other pieces TestRealClientStalledReadKicks lets come
// before the reader's first MiB: what the seeder sends in the second before a stall kicks,
// and in the few seconds more a busy machine may add (2 pieces a second).
const stalledReadOthersMax = 14
