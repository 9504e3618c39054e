package engine

import (
	"reflect"
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

// raiseRequestWindow raises p's request window to at least requestWindowFloor (see above). It
// runs in the library's SentRequest callback, with the client's lock held, which guards the
// field.
func raiseRequestWindow(p *torrent.Peer) {
	if !peakRequestsFound || p == nil {
		return
	}
	peak := (*int)(unsafe.Add(unsafe.Pointer(p), peakRequestsOffset))
	if *peak < requestWindowFloor/2 {
		*peak = requestWindowFloor / 2
	}
}
