package engine

import (
	"reflect"
	"testing"

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
