package engine

import (
	"slices"

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
//   - while the kick cancels, the engine widens each connection's request window by the
//     number cancelled (openWindowAfterKick, window.go), so the update AllowDataDownload runs asks at
//     once for up to requestWindowFloor blocks of what readers wait for, sent right behind
//     the cancels (the peer's reqq still bounds the window);
//   - each reject read while the task is urgent wakes wakeOnRejects, which pulses a piece
//     (see poke): a connection left idle by rejects then asks again at once instead of after
//     urgentQuiet.
//
// The peer watch (peers.go) counts the cancels a peer with the fast extension has not
// answered as owed: a link that dies just after a kick still has the blocks already on
// their way delivered, and those must not make it look as if the peer owed nothing, or the
// stall would never be seen.
//
// A jump kicks nothing when a piece that it or any other urgent reader waits for is already
// asked for (a second reader of the same region, the player's prefetch, an audio rendition's
// reader elsewhere in the file): cancelling those requests would only delay them.
const kickMinQueue = 16

// kick cancels the task's outstanding requests when a reader that jumped waits for pieces
// no connection has asked for while a connection's queue holds other pieces (see above).
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

// queuedAhead reports whether, among conns, no connection has a request outstanding for any
// of pieces and at least one has kickMinQueue or more outstanding (for other pieces, then).
func (w *peerWatch) queuedAhead(conns []*torrent.PeerConn, pieces []int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	deep := false
	for _, pc := range conns {
		s := w.conns[&pc.Peer]
		if s == nil {
			continue
		}
		for _, p := range pieces {
			if s.byPiece[p] > 0 {
				return false
			}
		}
		deep = deep || s.outstanding >= kickMinQueue
	}
	return deep
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
			s.kickCancelled = 0
			s.kickFast = pc.PeerExtensionBytes.SupportsFast()
		}
	}
}
