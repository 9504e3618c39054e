package engine

import (
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
)

// Idle connections.
//
// The torrent library (v1.59.1) moves a request from a slower connection to a faster one
// when the faster one runs out of work (it steals from a connection with more requests
// outstanding), and cancels it on the slower one. libtorrent and aria2 answer each cancel
// with a reject, and the update a reject triggers adds no request (requesting.go). So a
// slow connection whose last requests were taken away sits with nothing outstanding, and
// nothing wakes it: the library runs an update on an idle connection when a piece it has
// becomes wanted (pending, in its words), and a streamed or downloaded file is wanted
// whole, so no piece becomes wanted while the download goes on; priority changes of pieces
// already wanted (the readahead moving on) wake nobody. Traced on the mixed swarm
// (docs/benchmarks.md, "Idle seeders in a full read"): in one full read the aria2 seeder
// sat with nothing requested for 10 of its 15 s, and the 1 MB/s qBittorrent for its last
// 4.5 s, while the 8 MB/s seeder did the work. Urgent mode pulsed a piece only on rejects
// and when no block at all arrived for urgentQuiet (poke), so it did not catch this either.
//
// So every wakeIdleTick, when a connection that is not choking us and has delivered a block
// before has nothing outstanding while its peer has a piece the task lacks, the engine
// wakes it (wakeIdle): outside urgent mode by making the task's files unwanted and wanted
// again, in urgent mode by pulsing a piece urgent mode holds back (poke). Either way the
// library runs an update on each connection that has nothing outstanding, has such a
// piece and is not choking us; busy connections are left alone (their request windows
// too), no request is cancelled (the library keeps requests for pieces that stop being
// wanted), and nothing goes on the wire but the new requests. The pieces readers claim stay
// wanted throughout. When every connection idle now was idle at the last wake and has asked
// for nothing since (a leecher with nothing we lack, or whose pieces are all asked of
// others; a peer that chokes us without saying so), the interval doubles, up to
// wakeIdleMax: each wake scans the missing pieces and updates every piece of the files
// twice.
const (
	wakeIdleTick = 100 * time.Millisecond
	wakeIdleMax  = 8 * time.Second
)

// idleWake is a task's idle-wake state (see above).
type idleWake struct {
	last     time.Time
	interval time.Duration
	sent     map[*torrent.Peer]int // the requests each connection found idle had sent, at last
}

// wakeIdle wakes the task's idle connections (see above) unless the task is complete or not
// downloading, or it woke them less than its interval ago.
func (t *Task) wakeIdle(now time.Time) {
	if !t.hasInfo() || t.seeded {
		return
	}
	t.mu.Lock()
	incomplete := !t.complete && !t.paused && !t.cold && t.err == nil
	t.mu.Unlock()
	if !incomplete {
		return
	}
	idle, sent := t.e.peers.idleConns(t.tor.PeerConns())
	t.mu.Lock()
	if len(idle) == 0 {
		t.wake.interval = 0
		t.mu.Unlock()
		return
	}
	// A new idle spell is woken at once; the same one again only after the interval.
	next := wakeBackoff(t.wake.sent, sent, t.wake.interval)
	if now.Sub(t.wake.last) < max(wakeIdleTick, min(next, t.wake.interval)) {
		t.mu.Unlock()
		return
	}
	t.wake.interval, t.wake.last, t.wake.sent = next, now, sent
	t.mu.Unlock()
	// Only now, at most at the backoff's pace, the scan of the missing pieces: idle
	// leechers that have nothing we lack come back on every tick.
	if wakeIdleOff.Load() || !peersHaveAny(idle, t.missingPieces()) {
		return
	}

	t.flagMu.Lock()
	defer t.flagMu.Unlock()
	if !t.dlAllowed || t.stopped {
		return
	}
	t.urg.applyMu.Lock()
	defer t.urg.applyMu.Unlock()
	if t.isDone() {
		return
	}
	if t.urg.applied {
		// Urgent mode holds the files at None: pulse a piece it holds back.
		t.pulseLocked()
		return
	}
	t.setFilePriorities(torrent.PiecePriorityNone)
	t.setFilePriorities(torrent.PiecePriorityNormal)
}

// wakeIdleOff turns the waking off, for tests that show what it changes.
var wakeIdleOff atomic.Bool

// wakeBackoff returns the interval before the next wake, given the requests sent by the
// connections idle at the last wake (last) and by those idle now (now), and the interval so
// far: when every connection idle now was idle then and has sent nothing since, that wake
// failed, and the interval doubles (from wakeIdleTick, up to wakeIdleMax); otherwise this
// is a new idle spell, woken at once.
func wakeBackoff(last, now map[*torrent.Peer]int, interval time.Duration) time.Duration {
	if len(last) == 0 {
		return 0
	}
	for p, n := range now {
		if m, ok := last[p]; !ok || m != n {
			return 0
		}
	}
	return min(2*max(interval, wakeIdleTick), wakeIdleMax)
}

// wakeIdleLoop runs wakeIdle for every task every wakeIdleTick until the engine stops.
func (e *Engine) wakeIdleLoop() {
	e.every(wakeIdleTick, func(now time.Time) {
		for _, t := range e.snapshot() {
			t.wakeIdle(now)
		}
	})
}

// missingPieces returns the pieces of the task's wanted file(s) that are not verified, not
// being checked and whose completion is known; at most missingScan of them.
func (t *Task) missingPieces() []int {
	begin, end, ok := t.pieceRange()
	if !ok {
		return nil
	}
	var out []int
	i := 0
	for _, run := range t.tor.PieceStateRuns() {
		if i+run.Length > begin && i < end && run.Ok && !run.Complete && !run.Checking && !run.Marking {
			for p := max(i, begin); p < min(i+run.Length, end) && len(out) < missingScan; p++ {
				out = append(out, p)
			}
		}
		i += run.Length
		if i >= end || len(out) >= missingScan {
			break
		}
	}
	return out
}

// missingScan bounds the missing pieces peersHaveAny looks for in a peer's bitfield.
const missingScan = 256

// idleConns returns the connections among conns that have nothing outstanding, are not
// choking us, and have delivered a block before (so they have unchoked us at least once),
// with how many requests each of those has sent over its life (see wakeBackoff). It also
// counts, for tests (IdleTicks), a tick for each of conns and an idle tick for each idle one.
func (w *peerWatch) idleConns(conns []*torrent.PeerConn) ([]*torrent.PeerConn, map[*torrent.Peer]int) {
	var idle []*torrent.PeerConn
	sent := make(map[*torrent.Peer]int)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, pc := range conns {
		s := w.conns[&pc.Peer]
		if s == nil {
			continue
		}
		s.ticks++
		if s.outstanding == 0 && !s.choked && s.blocks > 0 {
			s.idleTicks++
			idle = append(idle, pc)
			sent[&pc.Peer] = s.sentSeq
		}
	}
	return idle, sent
}

// peersHaveAny reports whether a peer of conns has one of pieces.
func peersHaveAny(conns []*torrent.PeerConn, pieces []int) bool {
	for _, pc := range conns {
		has := pc.PeerPieces()
		for _, p := range pieces {
			if has.Contains(uint32(p)) {
				return true
			}
		}
	}
	return false
}
