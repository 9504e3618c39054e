package engine_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestRequestCeiling: against a seeder limited to 1 MiB/s, once the connection's rate is
// known its request window stays at what it delivers in half a second (never under the floor
// of 64 requests), where the library alone doubles it batch after batch (to 256 here), so a
// seek's new requests never wait behind seconds of old ones.
func TestRequestCeiling(t *testing.T) {
	// 8 MiB: the last 4 MiB leave room for a batch to start once the rate is known, even
	// with the file's tail fetched early (its last 512 KiB come with the head).
	dataPath, sum := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", 8<<20, 21)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen, UploadRateBytes: 1 << 20})
	si := seeder.Add(t, dataPath)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	task := addStream(t, le, si.Magnet)
	if err := task.AddPeers(si.Peer.String()); err != nil {
		t.Fatal(err)
	}
	r := openFile(t, task, timeout(t, 2*time.Minute), -1)
	// Read half, then on until a batch has started under a ceiling (on a busy machine the
	// rate may become known only late), look, read the rest: the connection ends once the
	// file is complete.
	h := sha256.New()
	if _, err := io.CopyN(h, r, 4<<20); err != nil {
		t.Fatal(err)
	}
	ceilings := engine.RequestCeilings(le)
	for read := int64(4 << 20); !anyCeiledBatch(ceilings) && read < 8<<20; read += 64 << 10 {
		if _, err := io.CopyN(h, r, 64<<10); err != nil {
			t.Fatal(err)
		}
		ceilings = engine.RequestCeilings(le)
	}
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		t.Fatalf("sha256 = %s, want %s", got, sum)
	}
	ceiled := false
	for _, c := range ceilings {
		ceiling, most, batches := c[0], c[1], c[2]
		t.Logf("ceiling %d, most outstanding under it %d, batches %d", ceiling, most, batches)
		if batches == 0 {
			continue
		}
		ceiled = true
		if ceiling < 64 {
			t.Errorf("ceiling %d, under the floor of 64", ceiling)
		}
		if most > ceiling {
			t.Errorf("%d requests outstanding under a ceiling of %d", most, ceiling)
		}
	}
	if !ceiled {
		t.Error("no connection's requests were held under a ceiling")
	}
}

// anyCeiledBatch reports whether a connection of RequestCeilings started a batch under its
// ceiling.
func anyCeiledBatch(ceilings [][3]int) bool {
	for _, c := range ceilings {
		if c[2] > 0 {
			return true
		}
	}
	return false
}

// TestRealClientCeilingFollowsRate: the ceiling is measured while it binds, so it must not
// pin a connection to the rate it had when it was set (on loopback a window of 64 still
// carries 16 MB/s, but over a real round trip the window bounds the rate). A qBittorrent
// seeder limited to 2 MB/s (a ceiling at about the floor of 64 requests, 1 MiB) has its
// limit raised to 16 MB/s mid-read; the ceiling must then grow to at least 96, half again
// the floor (above 3 MB/s measured through it: under -race with the CPU busy the engine
// still reads about 4 MB/s here), before the file ends, and the bytes must match.
func TestRealClientCeilingFollowsRate(t *testing.T) {
	const ceilingGrown = 96
	if !clienttest.Isolate(t) {
		return
	}
	clienttest.Need(t, "qbittorrent-nox")
	const size, pieceLength = 96 << 20, 1 << 20
	src, path, want := realSource(t, size, 31)
	torrentPath, ih := writeRealTorrent(t, t.TempDir(), path, pieceLength, func(string) string { return "" })
	cl := clienttest.StartQBittorrent(t, clienttest.Options{UploadRateBytes: 2_000_000})
	cl.AddTorrent(t, torrentPath, src)
	clienttest.WaitSeeding(t, cl, ih, 2*time.Minute)
	e := enginetest.NewEngine(t, func(o *engine.Options) { *o = realEngineOptions(t) })
	_, r := enginetest.OpenStream(t, e, torrentPath, cl.PeerAddr().String())

	maxCeiling := func() int {
		m := 0
		for _, c := range engine.RequestCeilings(e) {
			m = max(m, c[0])
		}
		return m
	}
	got := make([]byte, 0, size)
	buf := make([]byte, 256<<10)
	raisedAt, grewAt, seen := -1, -1, 0
	step(t, r, cl, "read", func() {
		for {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			c := maxCeiling()
			if raisedAt >= 0 {
				seen = max(seen, c)
			}
			if raisedAt < 0 && c > 0 {
				cl.SetUploadLimit(t, 16_000_000)
				raisedAt = len(got)
				t.Logf("ceiling %d after %d MiB; seeder's limit raised to 16 MB/s", c, len(got)>>20)
			} else if raisedAt >= 0 && grewAt < 0 && c >= ceilingGrown {
				grewAt = len(got)
				t.Logf("ceiling %d after %d MiB", c, len(got)>>20)
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatalf("read at %d: %v", len(got), err)
			}
		}
	})
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, differ from the file (%d bytes)", len(got), len(want))
	}
	if raisedAt < 0 {
		t.Fatal("no ceiling was set while reading from a seeder limited to 2 MB/s")
	}
	if grewAt < 0 {
		t.Fatalf("the ceiling grew to no more than %d after the seeder's limit went from 2 to 16 MB/s", seen)
	}
}
