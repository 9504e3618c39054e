package engine_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestRequestCeiling: against a seeder limited to 1 MiB/s, once the connection's rate is
// known its request window stays at what it delivers in half a second (never under the floor
// of 64 requests), where the library alone doubles it batch after batch (to 256 here), so a
// seek's new requests never wait behind seconds of old ones.
func TestRequestCeiling(t *testing.T) {
	dataPath, sum := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", 6<<20, 21)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen, UploadRateBytes: 1 << 20})
	si := seeder.Add(t, dataPath)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	task := addStream(t, le, si.Magnet)
	if err := task.AddPeers(si.Peer.String()); err != nil {
		t.Fatal(err)
	}
	r := openFile(t, task, timeout(t, 2*time.Minute), -1)
	// Read two thirds (the connection ends once the file is complete), look, read the rest.
	h := sha256.New()
	if _, err := io.CopyN(h, r, 4<<20); err != nil {
		t.Fatal(err)
	}
	ceilings := engine.RequestCeilings(le)
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
