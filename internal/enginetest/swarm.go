package enginetest

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
)

// BenchRates are the upload limits, in bytes per second, of the benchmark swarm: one fast
// seeder at 8 MB/s and three slow ones at 1 MB/s.
var BenchRates = []int64{8_000_000, 1_000_000, 1_000_000, 1_000_000}

// BenchPieceLength is the piece length of the benchmark swarm's torrent.
const BenchPieceLength = 4 << 20

// BenchSize returns the size of the benchmark swarm's file: 256 MiB, or TORRENTCLAW_BENCH_MB
// MiB (at least 8) to shrink it for a quick run.
func BenchSize(t testing.TB) int64 {
	t.Helper()
	s := os.Getenv("TORRENTCLAW_BENCH_MB")
	if s == "" {
		return 256 << 20
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 8 {
		t.Fatalf("TORRENTCLAW_BENCH_MB=%q: want a whole number of MiB, at least 8", s)
	}
	return int64(n) << 20
}

// SwarmOptions configures [NewSwarm].
type SwarmOptions struct {
	// Size is the size of the random file the swarm seeds. Required.
	Size int64
	// PieceLength is the torrent's piece length; 0 lets the library choose.
	PieceLength int64
	// Rates holds one upload limit (bytes per second, 0 unlimited) per seeder. Required.
	Rates []int64
	// Seed makes the file's contents reproducible.
	Seed int64
}

// Swarm is a set of loopback seeders of one random file, each with its own upload limit.
type Swarm struct {
	// Path is the seeded file, Size its length.
	Path string
	Size int64
	// InfoHash is the torrent's infohash (hex); Magnet a magnet with no peers.
	InfoHash string
	Magnet   string
	// Peers are the seeders' addresses ("127.0.0.1:port"), in the order of Rates.
	Peers []string
	// Rates and PieceLength are those the swarm was built with.
	Rates       []int64
	PieceLength int64
}

// NewBenchSwarm builds the benchmark swarm: [BenchSize] bytes, [BenchPieceLength] pieces,
// seeders at [BenchRates].
func NewBenchSwarm(t testing.TB) *Swarm {
	t.Helper()
	return NewSwarm(t, SwarmOptions{Size: BenchSize(t), PieceLength: BenchPieceLength, Rates: BenchRates, Seed: 42})
}

// NewSwarm writes a random file in a temporary directory and seeds it from one seeder per
// rate. The seeders close when the test ends.
func NewSwarm(t testing.TB, opts SwarmOptions) *Swarm {
	t.Helper()
	if opts.Size <= 0 || len(opts.Rates) == 0 {
		t.Fatalf("NewSwarm: want a size and at least one rate, got %d bytes and %d rates", opts.Size, len(opts.Rates))
	}
	path, _ := WriteRandomFile(t, t.TempDir(), "bench.mp4", opts.Size, opts.Seed)
	sw := &Swarm{Path: path, Size: opts.Size, Rates: opts.Rates, PieceLength: opts.PieceLength}
	for _, rate := range opts.Rates {
		s := NewSeeder(t, SeederOptions{UploadRateBytes: rate, PieceLength: opts.PieceLength})
		si := s.Add(t, path)
		sw.Peers = append(sw.Peers, si.Peer.String())
		sw.InfoHash = si.InfoHash
	}
	sw.Magnet = "magnet:?xt=urn:btih:" + sw.InfoHash
	return sw
}

// TotalRate is the sum of the seeders' upload limits, in bytes per second (0 if any is
// unlimited).
func (s *Swarm) TotalRate() int64 {
	sum, _ := s.rates()
	return sum
}

// MaxRate is the fastest seeder's upload limit in bytes per second (0 if any is unlimited).
func (s *Swarm) MaxRate() int64 {
	_, top := s.rates()
	return top
}

// rates returns the sum and the largest of the upload limits, both 0 if any is unlimited.
func (s *Swarm) rates() (sum, top int64) {
	for _, r := range s.Rates {
		if r == 0 {
			return 0, 0
		}
		sum, top = sum+r, max(top, r)
	}
	return sum, top
}

// FullLimit is the physical limit of reading the whole file: its size at the total rate.
func (s *Swarm) FullLimit() time.Duration {
	return rateDuration(s.Size, s.TotalRate())
}

// PieceLimit is the physical limit of a cold read: one piece at the fastest seeder's rate.
func (s *Swarm) PieceLimit() time.Duration {
	return rateDuration(s.PieceLength, s.MaxRate())
}

func rateDuration(n, rate int64) time.Duration {
	if rate <= 0 {
		return 0
	}
	return time.Duration(float64(n) / float64(rate) * float64(time.Second))
}

// SeekOffsets returns n reproducible offsets (from seed) at which readLen bytes fit in the
// file.
func (s *Swarm) SeekOffsets(n int, readLen int64, seed uint64) []int64 {
	rng := rand.New(rand.NewPCG(seed, seed))
	offsets := make([]int64, n)
	for i := range offsets {
		offsets[i] = rng.Int64N(s.Size - readLen)
	}
	return offsets
}

// AddTask adds the swarm's torrent to e as a streaming task, connects it to every seeder and
// waits until it has the metainfo and all of them as peers: what a benchmark does before
// its clock starts.
func (s *Swarm) AddTask(t testing.TB, e *engine.Engine) *engine.Task {
	t.Helper()
	task, err := e.Add(t.Context(), engine.AddSpec{Source: s.Magnet, FileIndex: -1, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.AddPeers(s.Peers...); err != nil {
		t.Fatal(err)
	}
	if err := task.WaitInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	WaitStatus(t, task, time.Minute, func(st engine.Status) bool { return st.Peers == len(s.Peers) })
	return task
}
