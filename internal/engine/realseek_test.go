package engine_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// BenchmarkRealTransmissionSeek measures seeks against one transmission-daemon 3.00 seeder
// (no upload limit, uTP on), the client that answers requests only on its 500 ms bandwidth
// pulse (window.go): a 64 MiB file with 1 MiB pieces, a fresh engine given the seeder's
// address, one warm-up read (Transmission unchokes a new peer only at its next 10 s rechoke),
// then 20 reads of 256 KiB at pseudo-random offsets in pieces not read before, each timed to
// its last byte and compared with the file. Reported: seek-p50-ms, seek-p95-ms, seek-max-ms.
func BenchmarkRealTransmissionSeek(b *testing.B) {
	if !clienttest.IsolateBench(b) {
		return
	}
	clienttest.Need(b, "transmission-daemon")
	const size, pieceLength, seeks = 64 << 20, 1 << 20, 20
	src, path, want := realSource(b, size, 21)
	torrentPath, ih := writeRealTorrent(b, b.TempDir(), path, pieceLength, func(string) string { return "" })
	cl := clienttest.StartTransmission(b, clienttest.Options{})
	cl.AddTorrent(b, torrentPath, src)
	clienttest.WaitSeeding(b, cl, ih, 2*time.Minute)

	// Distinct pieces, away from the head and tail the engine fetches on its own.
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := rng.Perm(size/pieceLength - 8)[:seeks+1]
	var took []time.Duration
	for b.Loop() {
		e := enginetest.NewEngine(b, func(o *engine.Options) { *o = realEngineOptions(b) })
		task, err := e.Add(b.Context(), engine.AddSpec{Source: torrentPath, FileIndex: -1, Stream: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := task.AddPeers(cl.PeerAddr().String()); err != nil {
			b.Fatal(err)
		}
		r, err := task.OpenFile(b.Context(), -1)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 256<<10)
		for i, p := range pieces {
			off := int64(p+4)*pieceLength + rng.Int64N(pieceLength-int64(len(buf)))
			start := time.Now()
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(r, buf); err != nil {
				b.Fatalf("read at %d: %v", off, err)
			}
			d := time.Since(start)
			if !bytes.Equal(buf, want[off:off+int64(len(buf))]) {
				b.Fatalf("read at %d: bytes differ from the file", off)
			}
			if i == 0 {
				b.Logf("warm-up read (connect, unchoke, first piece): %v", d.Round(time.Millisecond))
				continue
			}
			took = append(took, d)
		}
		r.Close()
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(took[len(took)/2]), "seek-p50-ms")
	b.ReportMetric(ms(took[len(took)*95/100]), "seek-p95-ms")
	b.ReportMetric(ms(took[len(took)-1]), "seek-max-ms")
}
