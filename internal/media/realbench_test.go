package media

// Benchmarks on swarms of real third-party clients (qbittorrent-nox, transmission-daemon,
// aria2c; internal/clienttest), each in a network namespace of its own with only lo, the
// clients with their default transports (uTP on; aria2 has TCP only) and the engine with
// uTP on. They measure through the real media listener (GET /stream), as a player does.
// `make bench` runs them; CI does not.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

const (
	realSeekRead = 256 << 10
	realNumSeeks = 20
	realRead16   = 16 << 20
	realReaders  = 4
	// realPhaseTimeout bounds one phase of a round; a phase that takes longer has stalled.
	realPhaseTimeout = 5 * time.Minute
)

// realBenchSize is the size of the real-client swarms' file: 128 MiB, or
// TORRENTCLAW_REALBENCH_MB MiB (at least 32) for a quick run.
func realBenchSize(b *testing.B) int64 {
	b.Helper()
	s := os.Getenv("TORRENTCLAW_REALBENCH_MB")
	if s == "" {
		return 128 << 20
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 32 {
		b.Fatalf("TORRENTCLAW_REALBENCH_MB=%q: want a whole number of MiB, at least 32", s)
	}
	return int64(n) << 20
}

// realSeeder is one client of a real swarm and its upload limit (0: unlimited).
type realSeeder struct {
	start func(testing.TB, clienttest.Options) clienttest.Client
	rate  int64
}

func qbittorrent(rate int64) realSeeder {
	return realSeeder{func(t testing.TB, o clienttest.Options) clienttest.Client { return clienttest.StartQBittorrent(t, o) }, rate}
}

func transmission(rate int64) realSeeder {
	return realSeeder{func(t testing.TB, o clienttest.Options) clienttest.Client { return clienttest.StartTransmission(t, o) }, rate}
}

func aria2(rate int64) realSeeder {
	return realSeeder{func(t testing.TB, o clienttest.Options) clienttest.Client { return clienttest.StartAria2(t, o) }, rate}
}

// realSwarm is a file seeded by real clients.
type realSwarm struct {
	path     string // the original file
	size     int64
	magnet   string // its magnet, with no tracker and no peer
	pieceLen int64
	peers    []string // the seeders' listen addresses
	rates    []int64
}

// newRealSwarm writes a random file of size bytes and has every seeder seed it.
func newRealSwarm(b *testing.B, size, pieceLen int64, seeders ...realSeeder) *realSwarm {
	b.Helper()
	src := b.TempDir()
	path, _ := enginetest.WriteRandomFile(b, src, "movie.mp4", size, 21)
	tp, ih := enginetest.WriteTorrentFile(b, b.TempDir(), path, pieceLen)
	sw := &realSwarm{path: path, size: size, magnet: "magnet:?xt=urn:btih:" + ih, pieceLen: pieceLen}
	for _, s := range seeders {
		c := s.start(b, clienttest.Options{UploadRateBytes: s.rate})
		c.AddTorrent(b, tp, src)
		clienttest.WaitSeeding(b, c, ih, 5*time.Minute)
		sw.peers = append(sw.peers, c.PeerAddr().String())
		sw.rates = append(sw.rates, s.rate)
		b.Logf("%s seeds at %s, upload limit %d B/s (0: none)", c.Name(), c.PeerAddr(), s.rate)
	}
	return sw
}

// limited reports whether every seeder has an upload limit, and returns their total and the
// fastest one's.
func (sw *realSwarm) limited() (total, top int64, ok bool) {
	for _, r := range sw.rates {
		if r <= 0 {
			return 0, 0, false
		}
		total, top = total+r, max(top, r)
	}
	return total, top, true
}

// BenchmarkRealQBittorrent1MiB streams from one qbittorrent-nox seeder (no upload limit) of
// a file with 1 MiB pieces.
func BenchmarkRealQBittorrent1MiB(b *testing.B) {
	if !clienttest.IsolateBench(b) {
		return
	}
	benchRealSwarm(b, newRealSwarm(b, realBenchSize(b), 1<<20, qbittorrent(0)))
}

// BenchmarkRealQBittorrent4MiB is BenchmarkRealQBittorrent1MiB with 4 MiB pieces.
func BenchmarkRealQBittorrent4MiB(b *testing.B) {
	if !clienttest.IsolateBench(b) {
		return
	}
	benchRealSwarm(b, newRealSwarm(b, realBenchSize(b), 4<<20, qbittorrent(0)))
}

// BenchmarkRealMixedLimited streams from four seeders of three kinds with upload limits of
// 8, 1, 1 and 1 MB/s (qBittorrent, Transmission, aria2c, qBittorrent), 4 MiB pieces: a swarm
// whose total rate is the physical limit of every figure.
func BenchmarkRealMixedLimited(b *testing.B) {
	if !clienttest.IsolateBench(b) {
		return
	}
	benchRealSwarm(b, newRealSwarm(b, realBenchSize(b), 4<<20,
		qbittorrent(8_000_000), transmission(1_000_000), aria2(1_000_000), qbittorrent(1_000_000)))
}

// benchRealSwarm measures one swarm. Each round uses three fresh daemons (an engine with empty
// directories behind the media listener, connected to every seeder before the clock starts),
// as a player that starts cold for each:
//
//   - full: GET /stream of the whole file; ttfb is the time to its first body byte.
//   - seek: 20 Range reads of 256 KiB at fixed pseudo-random offsets, one after another,
//     each to its last byte (p50, p95); then a Range read of 16 MiB from the middle.
//   - conc: 4 readers start together at 0, ¼, ½ and ¾ and each reads its quarter.
//
// With -v each seek is logged: its offset, the pieces it needed and its time.
// Every byte is compared with the original file. peak-rss-MiB is VmHWM of this process
// (the daemon and the HTTP client; the seeders are other processes), reset each round.
// On a rate-limited swarm each figure is also given as a ratio to its physical limit (-x-
// limit; 1 is the limit, higher is slower): one piece at the fastest seeder's rate for the
// first byte and the seeks, 16 MiB or the whole file at the total rate. load1 is the
// machine's 1-minute load average at the end of the round.
func benchRealSwarm(b *testing.B, sw *realSwarm) {
	want, err := os.Open(sw.path)
	if err != nil {
		b.Fatal(err)
	}
	defer want.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	offsets := make([]int64, realNumSeeks)
	for i := range offsets {
		offsets[i] = rng.Int64N(sw.size - realSeekRead)
	}
	mid := min(sw.size/2+sw.pieceLen/3, sw.size-realRead16) // not piece-aligned, as a player's seek is not

	var ttfb, full, after16, conc time.Duration
	var seeks []time.Duration
	var peakRSS uint64
	var load float64
	rounds := 0
	for b.Loop() {
		rounds++
		b.StopTimer()
		resetPeakRSS()
		d := startRealDaemon(b, sw)
		b.StartTimer()
		t0 := time.Now()
		ttfb += readCompare(b, d.url, 0, sw.size, want, false)
		full += time.Since(t0)
		b.StopTimer()
		d.close(b)
		stopIfFailed(b)

		d = startRealDaemon(b, sw)
		b.StartTimer()
		for _, off := range offsets {
			t0 := time.Now()
			readCompare(b, d.url, off, realSeekRead, want, true)
			seeks = append(seeks, time.Since(t0))
			if testing.Verbose() {
				// Which pieces each read needed and how long it took: cold reads cluster
				// on the seeders' quota ticks (docs/benchmarks.md).
				b.Logf("seek to %d (pieces %d-%d): %.1f ms", off, off/sw.pieceLen,
					(off+realSeekRead-1)/sw.pieceLen, float64(time.Since(t0).Microseconds())/1000)
			}
		}
		t0 = time.Now()
		readCompare(b, d.url, mid, realRead16, want, true)
		after16 += time.Since(t0)
		b.StopTimer()
		d.close(b)
		stopIfFailed(b)

		d = startRealDaemon(b, sw)
		b.StartTimer()
		t0 = time.Now()
		var wg sync.WaitGroup
		quarter := sw.size / realReaders
		for i := range realReaders {
			n := quarter
			if i == realReaders-1 {
				n = sw.size - int64(i)*quarter
			}
			wg.Go(func() { readCompare(b, d.url, int64(i)*quarter, n, want, true) })
		}
		wg.Wait()
		conc += time.Since(t0)
		b.StopTimer()
		d.close(b)
		stopIfFailed(b)
		peakRSS = max(peakRSS, procStatus("VmHWM"))
		load = max(load, loadAverage())
		b.StartTimer()
	}

	n := float64(rounds)
	slices.Sort(seeks)
	p50, p95 := seeks[(len(seeks)-1)*50/100], seeks[(len(seeks)-1)*95/100]
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(ttfb)/n, "ttfb-ms/op")
	b.ReportMetric(ms(p50), "seek-p50-ms")
	b.ReportMetric(ms(p95), "seek-p95-ms")
	b.ReportMetric(ms(after16)/n, "seek16MiB-ms/op")
	b.ReportMetric(float64(sw.size)*n/full.Seconds()/1e6, "full-MB/s")
	b.ReportMetric(float64(sw.size)*n/conc.Seconds()/1e6, "conc4-MB/s")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(load, "load1")
	if total, top, ok := sw.limited(); ok {
		piece := float64(sw.pieceLen) / float64(top) * 1000
		b.ReportMetric(ms(ttfb)/n/piece, "ttfb-x-limit")
		b.ReportMetric(ms(p50)/piece, "seek-p50-x-limit")
		b.ReportMetric(ms(p95)/piece, "seek-p95-x-limit")
		b.ReportMetric(ms(after16)/n/(float64(realRead16)/float64(total)*1000), "seek16MiB-x-limit")
		fullLimit := float64(sw.size) / float64(total) * 1000
		b.ReportMetric(ms(full)/n/fullLimit, "full-x-limit")
		b.ReportMetric(ms(conc)/n/fullLimit, "conc4-x-limit")
	}
}

// stopIfFailed ends the benchmark when a read failed (readCompare reports with Errorf, since
// it also runs in goroutines).
func stopIfFailed(b *testing.B) {
	if b.Failed() {
		b.FailNow()
	}
}

// realDaemon is a fresh engine (uTP on, DHT off) with one task, served by the media listener
// on 127.0.0.1:0 with tokens required: the daemon, as a player sees it.
type realDaemon struct {
	*swarmDaemon
	task *engine.Task
}

// startRealDaemon starts a daemon on sw's magnet, gives it the seeders' addresses and waits
// until it has the metainfo and every seeder as a peer. (With a .torrent and no reader yet,
// a streaming task wants no piece, so the library would not connect to anyone.)
func startRealDaemon(b *testing.B, sw *realSwarm) *realDaemon {
	b.Helper()
	d := newRealDaemon(b, nil)
	d.add(b, engine.AddSpec{Source: sw.magnet, FileIndex: -1, Stream: true})
	// The library dials an address it is given once; qBittorrent closes incoming connections
	// for a moment after it finished checking a torrent, so a dial can fail. A tracker's next
	// announce would give the address again; here the addresses are given again until every
	// seeder is connected.
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := d.task.AddPeers(sw.peers...); err != nil {
			b.Fatal(err)
		}
		if st := d.task.Status(); st.PiecesTotal > 0 && st.Peers >= len(sw.peers) {
			return d
		}
		if time.Now().After(deadline) {
			b.Fatalf("daemon: %+v after 2m; want the metainfo and %d peers", d.task.Status(), len(sw.peers))
		}
		<-tick.C
	}
}

// newRealDaemon starts an engine (options changed by mod) and serves it, with a token
// granted for the task that add adds.
func newRealDaemon(b *testing.B, mod func(*engine.Options)) *realDaemon {
	b.Helper()
	opts := enginetest.Options(b)
	opts.DisableUTP = false
	if mod != nil {
		mod(&opts)
	}
	eng, err := engine.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return &realDaemon{swarmDaemon: serveDaemon(b, eng, "bench")}
}

// add adds spec as the task the daemon's URL names.
func (d *realDaemon) add(b *testing.B, spec engine.AddSpec) {
	b.Helper()
	spec.ID = "bench"
	task, err := d.eng.Add(b.Context(), spec)
	if err != nil {
		d.close(b)
		b.Fatal(err)
	}
	d.task = task
}

// readCompare reads n bytes at off from url over a new connection (a Range request when
// ranged, else a plain GET of the whole file), compares them with want as they arrive, and
// returns the time to the first body byte. Safe for concurrent use.
func readCompare(b *testing.B, url string, off, n int64, want io.ReaderAt, ranged bool) time.Duration {
	ctx, cancel := context.WithTimeout(b.Context(), realPhaseTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		b.Error(err)
		return 0
	}
	status := http.StatusOK
	if ranged {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		status = http.StatusPartialContent
	}
	start := time.Now()
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}).Do(req)
	if err != nil {
		b.Errorf("GET /stream at %d: %v", off, err)
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		b.Errorf("GET /stream at %d = %d, want %d", off, resp.StatusCode, status)
		return 0
	}
	var first time.Duration
	got, exp := make([]byte, 64<<10), make([]byte, 64<<10)
	for done := int64(0); done < n; {
		k, err := resp.Body.Read(got[:min(int64(len(got)), n-done)])
		if k > 0 {
			if done == 0 {
				first = time.Since(start)
			}
			if _, err := want.ReadAt(exp[:k], off+done); err != nil {
				b.Errorf("read the original at %d: %v", off+done, err)
				return first
			}
			if !bytes.Equal(got[:k], exp[:k]) {
				b.Errorf("GET /stream at %d: bytes at %d differ from the file", off, off+done)
				return first
			}
			done += int64(k)
		}
		if err != nil && done < n {
			b.Errorf("GET /stream at %d: %d of %d bytes: %v", off, done, n, err)
			return first
		}
	}
	return first
}

// loadAverage returns the 1-minute load average, 0 if unknown.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// BenchmarkRealMagnet measures a cold start from a magnet: a running daemon is given the
// magnet of a file (32 MiB, 1 MiB pieces) that one qbittorrent-nox seeds; metadata-ms is the
// time until it has the metainfo, first-byte-ms until the first body byte of GET /stream
// (the request is made as soon as the metainfo is there). Two ways to find the seeder: the
// magnet's tr= (a local opentracker the seeder announced to) and its x.pe.
func BenchmarkRealMagnet(b *testing.B) {
	if !clienttest.IsolateBench(b) {
		return
	}
	src := b.TempDir()
	path, _ := enginetest.WriteRandomFile(b, src, "movie.mp4", 32<<20, 22)
	_, ih := enginetest.WriteTorrentFile(b, b.TempDir(), path, 1<<20)
	tr := clienttest.StartTracker(b, ih)
	tp, _ := enginetest.WriteTorrentFileAnnounce(b, b.TempDir(), path, 1<<20, tr.AnnounceURL())
	c := clienttest.StartQBittorrent(b, clienttest.Options{})
	c.AddTorrent(b, tp, src)
	clienttest.WaitSeeding(b, c, ih, 5*time.Minute)
	enginetest.WaitFor(b, time.Minute, "the seeder's announce", func() bool { return tr.Seeders(b, ih) >= 1 })
	want, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer want.Close()

	cases := []struct {
		name   string
		magnet string
		mod    func(*engine.Options)
	}{
		{"tracker", "magnet:?xt=urn:btih:" + ih + "&tr=" + url.QueryEscape(tr.AnnounceURL()),
			func(o *engine.Options) { o.DisableTrackers = false }},
		{"xpe", "magnet:?xt=urn:btih:" + ih + "&x.pe=" + c.PeerAddr().String(), nil},
	}
	meta := make([]time.Duration, len(cases))
	first := make([]time.Duration, len(cases))
	rounds := 0
	for b.Loop() {
		rounds++
		for i, tc := range cases {
			b.StopTimer()
			d := newRealDaemon(b, tc.mod) // the daemon runs before the magnet arrives
			b.StartTimer()
			t0 := time.Now()
			d.add(b, engine.AddSpec{Source: tc.magnet, FileIndex: -1, Stream: true})
			ctx, cancel := context.WithTimeout(b.Context(), realPhaseTimeout)
			err := d.task.WaitInfo(ctx)
			cancel()
			if err != nil {
				b.Fatalf("%s: no metainfo: %v", tc.name, err)
			}
			meta[i] += time.Since(t0)
			readCompare(b, d.url, 0, 1, want, false)
			first[i] += time.Since(t0)
			b.StopTimer()
			d.close(b)
			b.StartTimer()
		}
	}
	n := float64(rounds)
	for i, tc := range cases {
		b.ReportMetric(float64(meta[i])/float64(time.Millisecond)/n, tc.name+"-metadata-ms/op")
		b.ReportMetric(float64(first[i])/float64(time.Millisecond)/n, tc.name+"-first-byte-ms/op")
	}
	b.ReportMetric(loadAverage(), "load1")
}
