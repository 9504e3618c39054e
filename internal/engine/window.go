package engine

import (
	"math"
	"reflect"
	"time"
	"unsafe"

	"github.com/anacrolix/torrent"
)

// The request window after an idle spell.
//
// The torrent library (v1.59.1) lets a connection have as many block requests outstanding as
// twice the number its last request update added (at least one, at most the peer's reqq). A
// connection whose last update added nothing, because the reader it served was satisfied,
// starts the next read, a seek, at one request and doubles once per round trip: 16 KiB, then
// 32, 64, 128 KiB. Against libtorrent on loopback a round trip is a millisecond or so.
// Transmission 3.00 answers requests only on its bandwidth pulse, every 500 ms: a request that
// arrives while it is idle waits for the next pulse (once it writes, each finished write
// chains the next queued block). So a 256 KiB read from it took five pulses, about 2.5 s, and
// a 512 KiB piece six (captured in TestRealClientsSeed: the requests went out as 1, 2, 4, 8,
// 16 at 500 ms intervals, each batch answered on the seeder's next pulse).
//
// So the engine gives every connection a floor under that window: whenever the library sends
// a request on a connection whose last update added fewer than requestWindowFloor/2, it
// raises that count to requestWindowFloor/2, so the update under way may go on up to
// requestWindowFloor requests (a 1 MiB read in one round trip). The peer's reqq and the
// library's write buffer still bound it, and the library keeps growing the window beyond the
// floor as before. The count lives in an unexported field; the engine finds it by name and
// type when it starts and, if a library upgrade moves it, logs a warning and leaves the
// window alone (TestRequestWindowFloorFound fails then, so the upgrade has to look again).
const requestWindowFloor = 64

// peakRequestsOffset is the offset in torrent.Peer of the library's count of requests the
// connection's last update added (peakRequests, an int); peakRequestsFound says whether it
// was found.
var peakRequestsOffset, peakRequestsFound = findPeakRequests()

func findPeakRequests() (uintptr, bool) {
	f, ok := reflect.TypeFor[torrent.Peer]().FieldByName("peakRequests")
	if !ok || f.Type.Kind() != reflect.Int || len(f.Index) != 1 {
		return 0, false
	}
	return f.Offset, true
}

// setRequestWindow keeps p's request window at or above requestWindowFloor (see above) and,
// when ceiling > 0, at or under ceiling (see below), each beside the pending cancels of a
// kick the peer has not answered (kick.go), which the library counts against the window too:
// so a kick's requests still go out, and a piece a reader waits for is still asked for while
// the peer's rejects are on their way (a libtorrent limited to 2 MB/s sends them with its
// next quota tick, up to 500 ms later). It runs in the library's SentRequest callback, with
// the client's lock held, which guards the field; the update under way sees the new window
// from its next request on.
func setRequestWindow(p *torrent.Peer, ceiling, pending int) {
	peak := peakRequests(p)
	if peak == nil {
		return
	}
	*peak = max(*peak, floorBeside(pending))
	if ceiling > 0 {
		*peak = min(*peak, ceiling/2)
	}
}

// openWindowAfterKick makes room in p's request window for requestWindowFloor new requests
// beside the n cancels of a kick (kick.go) the library still counts as pending. It runs in
// the DeletedRequest callback of each cancel, with the client's lock held; the library takes
// one off the count after the callback, for that cancel. A connection under a ceiling keeps
// the room: the ceiling sent returns counts the cancels not answered yet on top (peers.go),
// else the first request after the kick would close the window again (traced on the /watch
// benchmark: one request went out behind the cancels, the rest a 500 ms tick later).
func openWindowAfterKick(p *torrent.Peer, n int) {
	if peak := peakRequests(p); peak != nil {
		*peak = max(*peak, floorBeside(n)+1)
	}
}

// floorBeside returns the peakRequests value whose window (twice it) holds requestWindowFloor
// requests beside pending cancels the library counts against it.
func floorBeside(pending int) int {
	return (requestWindowFloor + pending + 1) / 2
}

// peakRequests returns p's count of requests its last update added, nil if the field was
// not found. The client's lock must be held while it is used.
func peakRequests(p *torrent.Peer) *int {
	if !peakRequestsFound || p == nil {
		return nil
	}
	return (*int)(unsafe.Add(unsafe.Pointer(p), peakRequestsOffset))
}

// The request queue's ceiling.
//
// The window above only grows: the library doubles it batch after batch up to the peer's reqq
// (250 to 500 for most clients) or about 960, whatever the peer delivers. Against a seeder
// limited to 2 MB/s (the /watch benchmark's qBittorrent) 500 queued blocks are four seconds of
// its upload, and a seek's new piece, asked for after them, waits for all of them: the seeder
// serves requests in the order they came, and cancelling them makes libtorrent reject each,
// after which the library asks that connection for nothing more (urgent.go). So once a
// connection's rate is known the engine also holds its window under what the peer delivers
// in requestQueueTime, never below requestWindowFloor. A fast peer is not held back: its
// rate is measured while requests are outstanding, so as long as requestQueueTime is longer
// than a round trip (or Transmission's 500 ms pulse, or the 500 ms tick on which a rate-limited
// libtorrent hands out upload quota: the floor covers both at 2 MB/s), a
// window that limits the rate lets the measured rate, and so the ceiling, grow; on loopback
// an unlimited qBittorrent's ceiling is above the library's own bound.
//
// A peer slower than requestWindowFloor blocks in a second (1 MiB/s) gets a lower ceiling:
// twice what it delivers in requestQueueTime, at least slowQueueFloor. Under the floor of 64
// its queue held many seconds of its upload (8.5 s from a seeder at 120 KiB/s), and a peer
// that sends the requests it holds in no set order (anacrolix's upload picks them from a
// map) sent the piece a player waited for after most of them: Chromium's raw playback stood
// still for up to 8 s that way while the pieces after it came in. Twice the rate keeps room
// for a peer that sends on a 500 ms pulse to show a higher rate.
const (
	requestQueueTime = 500 * time.Millisecond
	slowQueueFloor   = 16
	// queueRateMinBlocks is how many blocks a connection must have delivered, over at least
	// a second of waiting for them, before its rate sets a ceiling.
	queueRateMinBlocks = 32
)

// requestQueueCeiling returns the ceiling for a connection that delivered blocks while
// requests were outstanding for expecting, or 0 (no ceiling) while that is too little to tell.
func requestQueueCeiling(blocks int, expecting time.Duration) int {
	if blocks < queueRateMinBlocks || expecting < time.Second {
		return 0
	}
	c := int(math.Ceil(float64(blocks) / expecting.Seconds() * requestQueueTime.Seconds()))
	return max(c, min(requestWindowFloor, max(2*c, slowQueueFloor)))
}
