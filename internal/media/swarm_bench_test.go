package media

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
	"github.com/torrentclaw/cli/internal/token"
)

// BenchmarkStreamSwarm streams the benchmark swarm of enginetest (four loopback seeders, one
// uploading at 8 MB/s and three at 1 MB/s, a 256 MiB file made at run time with 4 MiB
// pieces; TORRENTCLAW_BENCH_MB shrinks it) through the real media listener: Server.Serve on
// 127.0.0.1:0, tokens required, in front of a fresh leecher engine connected to every seeder
// before the clock starts. Every request goes over its own TCP connection.
//
// Each iteration measures, on one leecher: the time to the first body byte of GET /stream;
// 20 cold seeks (256 KiB Range reads at seeded offsets, to the last byte); reading 16 MiB
// from the middle of the file. Then, on a second fresh leecher, reading the whole file
// with one GET. Each figure is also reported as a ratio to the swarm's physical limit (-x-
// limit, 1 is the limit, higher is slower): one piece at the fastest seeder's rate for the
// first byte and seeks, 16 MiB at the total rate for the 16 MiB read, the file at the total
// rate for the whole file.
//
// peak-rss-MiB is VmHWM of this process, reset before each iteration: it includes the
// seeders and the test binary, so it is an upper bound for the daemon, and the torrent
// files the engines map (file-backed pages of the leechers and of all four seeders).
// peak-anon-MiB (anonymous resident memory: heap, stacks, runtime) and peak-heap-MiB (heap
// objects) are peaks sampled every 50ms, under the same caveat about the seeders.
//
//	go test -run '^$' -bench BenchmarkStreamSwarm -benchtime 1x ./internal/media
func BenchmarkStreamSwarm(b *testing.B) {
	const (
		seekRead = 256 << 10
		numSeeks = 20
		read16   = 16 << 20
	)
	sw := enginetest.NewBenchSwarm(b)
	size := sw.Size
	offsets := sw.SeekOffsets(numSeeks, seekRead, 7)
	mid := min(size/2, size-read16)

	var ttfb, after16, full time.Duration
	var seeks []time.Duration
	var peakRSS, peakAnon, peakHeap uint64
	rssReset := true
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		b.StopTimer()
		rssReset = resetPeakRSS() && rssReset
		sampler := startMemSampler()
		d := startSwarmDaemon(b, sw)
		b.StartTimer()

		start := time.Now()
		resp := swarmGet(b, d.url, "", http.StatusOK)
		if _, err := io.ReadFull(resp.Body, make([]byte, 1)); err != nil {
			b.Fatalf("first byte: %v", err)
		}
		ttfb += time.Since(start)
		resp.Body.Close()

		for _, off := range offsets {
			t0 := time.Now()
			swarmRead(b, d.url, off, seekRead)
			seeks = append(seeks, time.Since(t0))
		}
		t0 := time.Now()
		swarmRead(b, d.url, mid, read16)
		after16 += time.Since(t0)

		b.StopTimer()
		d.close(b)
		d = startSwarmDaemon(b, sw)
		b.StartTimer()

		t0 = time.Now()
		resp = swarmGet(b, d.url, "", http.StatusOK)
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("full GET: %d of %d bytes, %v", n, size, err)
		}
		full += time.Since(t0)

		b.StopTimer()
		d.close(b)
		heap, anon := sampler.stop()
		peakHeap, peakAnon = max(peakHeap, heap), max(peakAnon, anon)
		peakRSS = max(peakRSS, procStatus("VmHWM"))
		b.StartTimer()
	}
	if !rssReset {
		b.Log("peak-rss-MiB: /proc/self/clear_refs could not be written; it is the process's lifetime peak")
	}

	n := float64(b.N)
	slices.Sort(seeks)
	p50, p95 := seeks[(len(seeks)-1)*50/100], seeks[(len(seeks)-1)*95/100]
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	pieceLimit := ms(sw.PieceLimit())
	read16Limit := float64(read16) / float64(sw.TotalRate()) * 1000
	fullLimit := ms(sw.FullLimit())

	b.ReportMetric(ms(ttfb)/n, "ttfb-ms/op")
	b.ReportMetric(ms(ttfb)/n/pieceLimit, "ttfb-x-limit")
	b.ReportMetric(ms(p50), "seek-p50-ms")
	b.ReportMetric(ms(p50)/pieceLimit, "seek-p50-x-limit")
	b.ReportMetric(ms(p95), "seek-p95-ms")
	b.ReportMetric(ms(p95)/pieceLimit, "seek-p95-x-limit")
	b.ReportMetric(ms(after16)/n, "seek16MiB-ms/op")
	b.ReportMetric(ms(after16)/n/read16Limit, "seek16MiB-x-limit")
	b.ReportMetric(ms(full)/n, "full-ms/op")
	b.ReportMetric(float64(size)*n/full.Seconds()/1e6, "MB/s")
	b.ReportMetric(ms(full)/n/fullLimit, "full-x-limit")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(peakAnon)/(1<<20), "peak-anon-MiB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
}

// swarmDaemon is an engine with a media listener in front of it, standing in for the
// daemon.
type swarmDaemon struct {
	eng    *engine.Engine
	url    string // /stream URL of the task, with its token
	cancel context.CancelFunc
	done   chan error
}

// startSwarmDaemon starts a leecher, connects it to every seeder, and serves it on
// 127.0.0.1:0 with tokens required.
func startSwarmDaemon(b *testing.B, sw *enginetest.Swarm) *swarmDaemon {
	b.Helper()
	eng, err := engine.New(enginetest.Options(b))
	if err != nil {
		b.Fatal(err)
	}
	task := sw.AddTask(b, eng)
	return serveDaemon(b, eng, task.ID())
}

// serveDaemon serves eng on 127.0.0.1:0 with tokens required and one granted for the task
// id; the daemon's url streams that task. Close stops the listener and eng.
func serveDaemon(b *testing.B, eng *engine.Engine, id string) *swarmDaemon {
	b.Helper()
	tokens := token.New(token.Options{RequireToken: true})
	tok := mintToken(b)
	if err := tokens.Grant(id, tok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{Engine: eng, Tokens: tokens})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(b.Context()))
	d := &swarmDaemon{eng: eng, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- srv.Serve(ctx, ln) }()
	base := "http://" + netip.MustParseAddrPort(ln.Addr().String()).String()
	d.url = StreamURL(base, id, tok, -1)
	return d
}

func (d *swarmDaemon) close(b *testing.B) {
	b.Helper()
	d.cancel()
	if err := <-d.done; err != nil {
		b.Errorf("Serve() = %v", err)
	}
	if err := d.eng.Close(); err != nil {
		b.Errorf("engine Close() = %v", err)
	}
}

// swarmGet sends a GET over a new connection (optionally with a Range header) and checks the
// status. The caller reads and closes the body; the connection closes with it.
func swarmGet(b *testing.B, url, rangeHdr string, want int) *http.Response {
	b.Helper()
	req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	if rangeHdr != "" {
		req.Header.Set("Range", rangeHdr)
	}
	c := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true},
		Timeout:   10 * time.Minute,
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatalf("GET /stream: %v", err)
	}
	if resp.StatusCode != want {
		resp.Body.Close()
		b.Fatalf("GET /stream (%q) = %d, want %d", rangeHdr, resp.StatusCode, want)
	}
	return resp
}

// swarmRead reads n bytes at off with a Range request over a new connection.
func swarmRead(b *testing.B, url string, off, n int64) {
	b.Helper()
	resp := swarmGet(b, url, fmt.Sprintf("bytes=%d-%d", off, off+n-1), http.StatusPartialContent)
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	if err != nil || got != n {
		b.Fatalf("range at %d: %d of %d bytes, %v", off, got, n, err)
	}
}

// resetPeakRSS resets VmHWM (Linux: writing 5 to clear_refs) and reports whether it could.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// procStatus returns a field of /proc/self/status ("VmHWM", "RssAnon") in bytes, or 0 if
// it cannot be read.
func procStatus(field string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte(field+":"))
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// memSampler records the peaks of the heap's object bytes and of the process's anonymous
// resident memory until stopped.
type memSampler struct {
	stopc      chan struct{}
	wg         sync.WaitGroup
	heap, anon uint64
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func startMemSampler() *memSampler {
	s := &memSampler{stopc: make(chan struct{})}
	s.wg.Go(func() {
		sample := []metrics.Sample{{Name: heapObjects}}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				s.heap = max(s.heap, sample[0].Value.Uint64())
			}
			s.anon = max(s.anon, procStatus("RssAnon"))
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	})
	return s
}

// stop ends sampling and returns the peaks in bytes.
func (s *memSampler) stop() (heap, anon uint64) {
	close(s.stopc)
	s.wg.Wait()
	return s.heap, s.anon
}
