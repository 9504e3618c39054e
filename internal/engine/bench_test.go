package engine_test

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// BenchmarkStream streams from a constrained swarm: four loopback seeders, one uploading at
// 8 MB/s and three at 1 MB/s, of a file made at run time (256 MiB, or TORRENTCLAW_BENCH_MB)
// with 4 MiB pieces. Each iteration starts a fresh leecher and connects it to all four
// before the clock starts, then measures the time to the first 64 KiB, 20 cold seeks
// reading 256 KiB each at seeded offsets, reading 16 MiB after a seek, and reading the whole
// file.
//
//	go test -run '^$' -bench BenchmarkStream -benchtime 1x ./internal/engine
func BenchmarkStream(b *testing.B) {
	const (
		seekRead = 256 << 10
		numSeeks = 20
	)
	sw := enginetest.NewBenchSwarm(b)
	size := sw.Size
	offsets := sw.SeekOffsets(numSeeks, seekRead, 7)
	read16 := min(int64(16<<20), size/2)

	var ttfb, after16, full time.Duration
	var seeks []time.Duration
	buf := make([]byte, seekRead)
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		le, err := engine.New(enginetest.Options(b))
		if err != nil {
			b.Fatal(err)
		}
		task := sw.AddTask(b, le)
		b.StartTimer()

		start := time.Now()
		r, err := task.OpenFile(b.Context(), -1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf[:64<<10]); err != nil {
			b.Fatal(err)
		}
		ttfb += time.Since(start)
		for _, off := range offsets {
			t0 := time.Now()
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(r, buf); err != nil {
				b.Fatal(err)
			}
			seeks = append(seeks, time.Since(t0))
		}
		t0 := time.Now()
		if _, err := r.Seek(size/2, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, r, read16); err != nil {
			b.Fatal(err)
		}
		after16 += time.Since(t0)
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != size {
			b.Fatalf("full read: %d bytes, %v", n, err)
		}
		full += time.Since(start)

		b.StopTimer()
		r.Close()
		if err := le.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(b.N)
	slices.Sort(seeks)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(ttfb)/n, "ttfb-ms/op")
	b.ReportMetric(ms(seeks[len(seeks)/2]), "seek-p50-ms")
	b.ReportMetric(ms(seeks[len(seeks)*95/100]), "seek-p95-ms")
	b.ReportMetric(ms(after16)/n, "read16MiB-ms/op")
	b.ReportMetric(float64(size)*n/full.Seconds()/1e6, "full-MB/s")
}
