package engine

import (
	"reflect"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
)

// TestRequestWindowFloorFound checks that the engine finds the torrent library's
// per-connection request count (window.go) and that raising it writes that field: after a
// library upgrade that moves it this fails, and window.go has to look again.
func TestRequestWindowFloorFound(t *testing.T) {
	if !peakRequestsFound {
		t.Fatal("torrent.Peer has no int field peakRequests: the request window floor does nothing with this library version")
	}
	var p torrent.Peer
	peak := reflect.ValueOf(&p).Elem().FieldByName("peakRequests")
	setRequestWindow(&p, 0, 0)
	if got := peak.Int(); got != requestWindowFloor/2 {
		t.Fatalf("after setRequestWindow peakRequests = %d, want %d", got, requestWindowFloor/2)
	}
	// A window the library grew beyond the floor stays as it is.
	setRequestWindow(&p, 0, 0) // idempotent
	*(*int)(peak.Addr().UnsafePointer()) = 3 * requestWindowFloor
	setRequestWindow(&p, 0, 0)
	if got := peak.Int(); got != 3*requestWindowFloor {
		t.Fatalf("setRequestWindow lowered peakRequests from %d to %d", 3*requestWindowFloor, got)
	}
	// Beside cancels a peer has yet to answer, the floor and the ceiling are for requests.
	*(*int)(peak.Addr().UnsafePointer()) = 1
	setRequestWindow(&p, 0, 100)
	if got := peak.Int(); got != (requestWindowFloor+100)/2 {
		t.Fatalf("with 100 cancels pending peakRequests = %d, want %d", got, (requestWindowFloor+100)/2)
	}
	setRequestWindow(&p, 80+100, 100)
	if got := peak.Int(); got != (requestWindowFloor+100)/2 {
		t.Fatalf("with 100 cancels pending under a ceiling of 80 peakRequests = %d, want %d", got, (requestWindowFloor+100)/2)
	}
	*(*int)(peak.Addr().UnsafePointer()) = 3 * requestWindowFloor
	setRequestWindow(&p, 80+100, 100)
	if got := peak.Int(); got != (80+100)/2 {
		t.Fatalf("with 100 cancels pending under a ceiling of 80 peakRequests = %d, want %d", got, (80+100)/2)
	}
}

// TestRequestQueueCeiling: a connection's ceiling is what it delivers in half a second,
// never under the floor of 64 for a peer of 1 MiB/s or more; a slower peer's is twice
// that, at least 16, so its queue never holds many seconds of its upload.
func TestRequestQueueCeiling(t *testing.T) {
	for _, c := range []struct {
		blocksPerSec float64 // 16 KiB blocks
		want         int
	}{
		{7.5, 16},  // 120 KiB/s: 2 s of queue (was 64, 8.5 s)
		{16, 16},   // 256 KiB/s
		{24, 24},   // 384 KiB/s
		{48, 48},   // 768 KiB/s
		{64, 64},   // 1 MiB/s: the floor, as before
		{128, 64},  // 2 MiB/s
		{512, 256}, // 8 MiB/s: half a second
		{4096, 2048},
	} {
		expecting := 8 * time.Second
		blocks := int(c.blocksPerSec * expecting.Seconds())
		if got := requestQueueCeiling(blocks, expecting); got != c.want {
			t.Errorf("requestQueueCeiling(%d blocks in %v) = %d, want %d", blocks, expecting, got, c.want)
		}
	}
	if got := requestQueueCeiling(31, 10*time.Second); got != 0 {
		t.Errorf("ceiling %d from 31 blocks, want none until 32", got)
	}
}

// TestSpanAhead: a span is wanted at once up to what the task downloads in a second, at
// least two pieces, at most 8 MiB, never past its end.
func TestSpanAhead(t *testing.T) {
	const piece = 256 << 10
	for _, c := range []struct{ left, bps, want int64 }{
		{16 << 20, 0, 2 * piece},            // rate unknown
		{16 << 20, 120 << 10, 2 * piece},    // slow swarm: the two pieces
		{16 << 20, 3 << 20, 3 << 20},        // a second of 3 MiB/s
		{16 << 20, 100 << 20, maxSpanBytes}, // bounded
		{100 << 10, 100 << 20, 100 << 10},   // the span's end
	} {
		if got := spanAhead(c.left, piece, c.bps); got != c.want {
			t.Errorf("spanAhead(%d, %d, %d) = %d, want %d", c.left, piece, c.bps, got, c.want)
		}
	}
}
