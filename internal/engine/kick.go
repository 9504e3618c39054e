package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/anacrolix/torrent"
)

// Kicking a deep queue on a seek.
//
// The torrent library (v1.59.1) adds requests to a connection only when it has none
// outstanding (isLowOnRequests), and a piece that stops being wanted keeps the requests
// already sent for it. libtorrent and aria2 serve a connection's requests in the order they
// came. So when a reader jumps to a missing piece while the background download has a queue
// on a connection (against an unlimited qBittorrent on loopback, hundreds of blocks, several
// MiB), the new piece is asked for only once that whole queue has been served: urgent mode
// narrows what is wanted, but the seek still waits for the queue (docs/benchmarks.md traced
// seeks that waited 9–89 ms for it on a 1 MiB-piece swarm).
//
// So a jump whose pieces no connection has asked for yet, while some connection has at least
// kickMinQueue requests outstanding, cancels every outstanding request of the task (the
// library's DisallowDataDownload, then AllowDataDownload at once). The peer drops the
// cancelled requests it has not started on and rejects each; blocks it had started on still
// arrive and are kept. The library counts a cancelled request as pending until the peer
// answers it, so on its own it would ask for the new piece only after every answer, a round
// trip later, and the update it runs on the last reject adds nothing (requesting.go: no
// requests on a reject). Two things close that gap:
//
//   - while the kick cancels, the engine widens each connection's request window by every
//     cancel the peer has yet to answer (openWindowAfterKick, window.go), and the floor and
//     the ceiling keep that room for as long as they are unanswered, so the update
//     AllowDataDownload runs asks at once for up to requestWindowFloor blocks of what
//     readers wait for, sent right behind the cancels (the peer's reqq still bounds it);
//   - each reject read while the task is urgent wakes wakeOnRejects, which pulses a piece
//     (see poke): a connection left idle by rejects then asks again at once instead of after
//     urgentQuiet.
//
// The peer watch (peers.go) counts the cancels a peer with the fast extension has not
// answered as owed: a link that dies just after a kick still has the blocks already on
// their way delivered, and those must not make it look as if the peer owed nothing, or the
// stall would never be seen.
//
// A jump kicks when a piece that it or any other urgent reader waits for waits behind
// kickMinQueue or more requests for pieces nobody waits for: either no connection has asked
// for it and a connection's queue holds that many, or every connection that asked for it
// has that many ahead of it (the peer serves in order; queuedAhead). Pieces readers wait for
// that are asked for already are cancelled with the rest and asked for again at once, right
// behind the cancels. Two seeks traced on the /watch benchmark (a qBittorrent limited to
// 2 MB/s) show why both halves matter: in one, the prefetch's three pieces were one asked for
// by the background download and two not; in the other, a few seconds into the stream
// before the connection's rate had set its request ceiling (window.go), all three had been
// asked for, some 370 requests deep in a queue of 500. A rule that kicked only when none was
// asked for let them wait 1 and 2.4 s. A queue of waited-for pieces alone (what a kick leaves
// behind, or a long span whose pieces do not fit in one window) kicks nothing: that would
// only delay them.
//
// A sequential read that has waited readStallUrge kicks by the same rule. The first update
// on a new connection sends up to twice requestWindowFloor requests (the file's head and
// tail, the readahead) before the connection's rate can set a ceiling: against a
// qBittorrent limited to 128 KiB/s that is about 16 s of its upload, and a player reading
// on from the head waited behind the tail's pieces (TestRealClientStalledReadKicks: 22
// other pieces came before the reader's first MiB; a raw /watch playback stood still for a
// minute).
const kickMinQueue = 16

// kick cancels the task's outstanding requests when a reader that jumped, or stalled, waits
// for a piece behind a connection's queue of other pieces (see above).
func (t *Task) kick(waiting []int) {
	if !t.hasInfo() {
		return
	}
	// Every piece an urgent reader waits for, not only this one's: a kick must not take
	// another waiting reader's requests away. waiting is also the slice urge stored, which
	// the watchdog filters in place under urg.mu: read it only under that lock.
	t.urg.mu.Lock()
	pieces := slices.Clone(waiting)
	for _, ps := range t.urg.waiting {
		pieces = append(pieces, ps...)
	}
	t.urg.mu.Unlock()
	conns := t.tor.PeerConns()
	if !t.e.peers.queuedAhead(conns, pieces) {
		return
	}
	t.cancelRequests(conns)
}

// cancelRequests cancels every outstanding request of the task, on conns, by turning its
// downloading off and on again. While it is off the library fails every read that waits
// for data ("torrent data downloading disabled"); Reader.Read reads again when a kick came
// between (kickedSince), so a kick by one reader never ends another's read.
func (t *Task) cancelRequests(conns []*torrent.PeerConn) {
	t.flagMu.Lock()
	defer t.flagMu.Unlock()
	if !t.dlAllowed || t.stopped {
		return
	}
	t.e.peers.setKicking(conns, true)
	t.tor.DisallowDataDownload()
	t.e.peers.setKicking(conns, false)
	t.tor.AllowDataDownload()
	t.kicks.Add(1)
}

// readPastKicks reads from lr, a library reader of t, and reads again when the read failed
// because another reader's kick turned downloading off for a moment (see cancelRequests).
// The library itself waits once more after a failed wait, so one kick passes unseen, but a
// second one during that wait ended the read: a player's, ffmpeg's or an HLS prefetch's
// response was cut short, or the bitrate probe gave up.
func (t *Task) readPastKicks(ctx context.Context, lr io.Reader, p []byte) (int, error) {
	kicks := t.kicks.Load()
	n, err := lr.Read(p)
	for n == 0 && err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil && t.kickedSince(kicks) {
		kicks = t.kicks.Load()
		n, err = lr.Read(p)
	}
	return n, err
}

// kickedSince reports whether a kick has ended since the task's kick count was k, and the
// task is downloading: a read that failed meanwhile failed because of the kick, and can wait
// again. It waits for a kick under way to end.
func (t *Task) kickedSince(k int64) bool {
	t.flagMu.Lock()
	defer t.flagMu.Unlock()
	return t.kicks.Load() != k && t.dlAllowed && !t.stopped
}

// wakeOnRejects pokes every urgent task each time a peer has rejected requests (see above),
// until the engine stops. Rejects come in bursts; the signal holds one wake-up, so a burst
// costs a few pokes, and the last runs after the last reject was handled.
func (e *Engine) wakeOnRejects() {
	for {
		select {
		case <-e.stop:
			return
		case <-e.peers.rejected:
		}
		for _, t := range e.snapshot() {
			t.urg.mu.Lock()
			on := t.urg.on
			t.urg.mu.Unlock()
			if on {
				t.pulseIdle()
			}
		}
	}
}

// queuedAhead reports whether, among conns, a piece of pieces waits behind a queue: either
// no connection has asked for it while one has kickMinQueue or more requests outstanding for
// other pieces (the library would ask for it only once that queue was served), or every
// connection that asked for it has kickMinQueue or more requests for other pieces ahead of it
// (the peer serves them first). A piece of pieces that is asked for already is cancelled too by
// a kick, and asked for again at once, ahead of what the queue held; but requests for pieces
// readers wait for are no reason to kick (what a kick leaves behind, a long span's pieces).
func (w *peerWatch) queuedAhead(conns []*torrent.PeerConn, pieces []int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	waited := make(map[int]bool, len(pieces))
	for _, p := range pieces {
		waited[p] = true
	}
	asked := make(map[int]int, len(pieces)) // the fewest other requests ahead of it on a conn
	deep := false
	for _, pc := range conns {
		s := w.conns[&pc.Peer]
		if s == nil {
			continue
		}
		// While a kick's cancels are on their way, what the connection asks for it asked
		// after that kick, in the readers' order, and the window keeps room for more beside
		// the cancels (setRequestWindow). Kicking again would cancel that, and the library
		// asks for a cancelled block again only once the peer has answered the cancel:
		// traced, a second kick 1 ms after the first held a seek's pieces back until the
		// peer's next 500 ms quota tick. So such a connection counts as having nothing ahead.
		settling := len(s.cancelled) > 0
		other := s.outstanding
		for p := range waited {
			other -= s.byPiece[p]
		}
		unordered := servesUnordered(pc)
		for p := range waited {
			if s.byPiece[p] == 0 {
				continue
			}
			ahead := 0
			switch {
			case settling:
			case unordered:
				// The peer picks among all it holds: every request for another piece
				// may come first.
				ahead = other
			default:
				ahead = s.otherAhead(p, waited)
			}
			if a, ok := asked[p]; !ok || ahead < a {
				asked[p] = ahead
			}
		}
		deep = deep || !settling && other >= kickMinQueue
	}
	for p := range waited {
		if a, ok := asked[p]; ok && a >= kickMinQueue || !ok && deep {
			return true
		}
	}
	return false
}

// otherAhead estimates how many requests for pieces not in waited are ahead of piece p's
// first outstanding request in the peer's queue, taking the peer to serve requests in the
// order they came (libtorrent and aria2 do) and answers to have come in that order too.
func (s *peerState) otherAhead(p int, waited map[int]bool) int {
	first := s.firstSeq[p]
	ahead := first - s.doneSeq - 1
	for q := range waited {
		if q != p && s.byPiece[q] > 0 && s.firstSeq[q] < first {
			ahead -= s.byPiece[q]
		}
	}
	return max(ahead, 0)
}

// servesUnordered reports whether pc's peer serves the requests it holds in no set order:
// the anacrolix torrent library's upload (v1.59.1, PeerConn.upload) picks them from a map.
// Its clients, this daemon's seed and its tests' seeders among them, announce themselves with
// the library's default peer ID prefix, -GT followed by a version. An application that sets
// a prefix of its own usually keeps the library's client name in the extended handshake
// ("v": "<app> <version> (anacrolix/torrent <version>)"), so that counts too. Against such a peer a
// waited piece's place in our queue says nothing: with n other requests outstanding, any of
// them may come first. A reader's first read from an anacrolix seeder limited to 30 KiB/s,
// behind the connection's first batch (up to two windows, 2 MiB, before its rate sets a
// ceiling), took 12 to 179 s in one test (TestE2ESubtitleWindowFirstByte).
func servesUnordered(pc *torrent.PeerConn) bool {
	if bytes.HasPrefix(pc.PeerID[:], []byte("-GT")) {
		return true
	}
	name, _ := pc.PeerClientName.Load().(string)
	return strings.Contains(name, "anacrolix/torrent")
}

// answersCancels reports whether pc's peer answers each cancel with the block or a reject,
// as the library expects (v1.59.1, remoteRejectsCancels): a peer with the fast extension,
// except Transmission before 4.0 (peer ID -TRxyzw- with x < 4), which drops a cancelled
// request silently. Counting such a peer's cancels as owed would have it owe them forever:
// in TestRealClientKickedSeeks, Transmission 3.00 had 320 unanswered after five kicks.
func answersCancels(pc *torrent.PeerConn) bool {
	if !pc.PeerExtensionBytes.SupportsFast() {
		return false
	}
	id := pc.PeerID
	if bytes.HasPrefix(id[:], []byte("-TR")) && id[7] == '-' {
		return id[3] >= '4'
	}
	return true
}

// setKicking marks conns as having their requests cancelled by a kick (on), or no longer.
func (w *peerWatch) setKicking(conns []*torrent.PeerConn, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, pc := range conns {
		s := w.conns[&pc.Peer]
		if s == nil {
			continue // nothing asked of it: nothing to cancel
		}
		s.kicking = on
		if on {
			s.kickFast = answersCancels(pc)
			s.kickUnanswered, s.behindKick = true, 0
		}
	}
}
