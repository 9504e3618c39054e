package engine

import (
	"maps"
	"sync"

	"github.com/anacrolix/torrent"
)

// Piece priorities, highest last, as the torrent library orders them.
const (
	prioNone      = torrent.PiecePriorityNone
	prioNormal    = torrent.PiecePriorityNormal
	prioHigh      = torrent.PiecePriorityHigh
	prioReadahead = torrent.PiecePriorityReadahead
	prioNext      = torrent.PiecePriorityNext
	prioNow       = torrent.PiecePriorityNow
)

// claims maps piece index to a wanted priority.
type claims map[int]torrent.PiecePriority

// ledger arbitrates the piece-level priority of one torrent between its claimants (readers,
// the head and tail of a streamed file). A piece gets the highest priority any claimant
// wants, and drops back (to the file's priority) when nobody wants it. File-level
// priorities (File.SetPriority) are separate and untouched. Safe for concurrent use.
type ledger struct {
	// set applies a piece priority in the torrent library. It is called with mu held.
	set func(piece int, prio torrent.PiecePriority)

	mu      sync.Mutex
	closed  bool                          // guarded by mu; after close nothing is applied
	urgent  bool                          // guarded by mu; apply only Now claims (see setUrgent)
	first   map[any]bool                  // guarded by mu; urgent owners (see setFirst)
	byOwner map[any]claims                // guarded by mu
	applied map[int]torrent.PiecePriority // guarded by mu; pieces whose priority we raised
}

func newLedger(set func(piece int, prio torrent.PiecePriority)) *ledger {
	return &ledger{set: set, byOwner: make(map[any]claims), applied: make(map[int]torrent.PiecePriority)}
}

// claim replaces owner's claims with want (nil or empty releases them all) and updates the
// pieces whose resulting priority changed.
func (l *ledger) claim(owner any, want claims) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	old := l.byOwner[owner]
	if len(want) == 0 {
		delete(l.byOwner, owner)
		delete(l.first, owner)
	} else {
		l.byOwner[owner] = want
	}
	for p := range old {
		l.refresh(p)
	}
	for p := range want {
		if _, ok := old[p]; !ok {
			l.refresh(p)
		}
	}
}

// setUrgent switches between applying every claim and applying only Now claims (so that
// the pieces readers are blocked on are the only ones wanted from peers), those of owners
// not marked first as Next.
func (l *ledger) setUrgent(urgent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.urgent == urgent {
		return
	}
	l.urgent = urgent
	seen := make(map[int]bool)
	for _, c := range l.byOwner {
		for p := range c {
			if !seen[p] {
				seen[p] = true
				l.refresh(p)
			}
		}
	}
	for p := range l.applied {
		if !seen[p] {
			l.refresh(p)
		}
	}
}

// setFirst marks owner as one whose Now claims come first in urgent mode (on), or no longer:
// a reader urgent mode waits for. Urgent mode applies the other owners' Now claims as Next,
// so the library asks for them only after every piece an urgent reader waits for (it orders
// pieces by priority first, and then puts partly downloaded pieces first). Traced on the
// /watch benchmark: each ffmpeg a seek starts opens the file at byte 0, and the response
// runs ahead into the socket until it waits at the edge of what has arrived, claiming that
// piece Now, for the 50 ms until ffmpeg moves on; a kick then asked for that piece before
// the seek's, and the seek's spilled into the seeder's next 500 ms quota tick.
func (l *ledger) setFirst(owner any, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.first[owner] == on {
		return
	}
	if on {
		if l.first == nil {
			l.first = make(map[any]bool)
		}
		l.first[owner] = true
	} else {
		delete(l.first, owner)
	}
	if l.urgent {
		for p := range l.byOwner[owner] {
			l.refresh(p)
		}
	}
}

// maxFor returns the priority piece p should have.
func (l *ledger) maxFor(p int) torrent.PiecePriority {
	m := prioNone
	for owner, c := range l.byOwner {
		v, ok := c[p]
		if !ok {
			continue
		}
		if l.urgent {
			if v < prioNow {
				continue
			}
			if !l.first[owner] {
				v = prioNext
			}
		}
		m = max(m, v)
	}
	return m
}

func (l *ledger) refresh(p int) {
	m := l.maxFor(p)
	if l.applied[p] == m {
		return
	}
	l.set(p, m)
	if m == prioNone {
		delete(l.applied, p)
	} else {
		l.applied[p] = m
	}
}

// snapshot returns the priorities the ledger currently applies.
func (l *ledger) snapshot() claims {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.applied)
}

// close stops all further changes; the torrent is about to be dropped.
func (l *ledger) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// window returns the graded claims of a reader at torrent offset off, for a file ending at
// torrent offset end (exclusive): the piece under the reader gets Now, the next Next, the
// first half of the rest of the readahead Readahead and the remainder High.
func window(off, end, pieceLen, readahead int64) claims {
	if off < 0 || off >= end || pieceLen <= 0 {
		return nil
	}
	last := min(off+max(readahead, 1), end) - 1
	first, lastPiece := int(off/pieceLen), int(last/pieceLen)
	n := lastPiece - first + 1
	c := make(claims, n)
	for i := range n {
		switch {
		case i == 0:
			c[first+i] = prioNow
		case i == 1:
			c[first+i] = prioNext
		case i <= n/2:
			c[first+i] = prioReadahead
		default:
			c[first+i] = prioHigh
		}
	}
	return c
}

// span returns claims of prio for the pieces covering [off, off+n) of the torrent.
func span(off, n, pieceLen int64, prio torrent.PiecePriority) claims {
	if n <= 0 || pieceLen <= 0 {
		return nil
	}
	c := make(claims)
	for p := off / pieceLen; p <= (off+n-1)/pieceLen; p++ {
		c[int(p)] = prio
	}
	return c
}

// merge adds b's claims to a, keeping the higher priority.
func merge(a, b claims) claims {
	if a == nil {
		a = make(claims, len(b))
	}
	for p, v := range b {
		if v > a[p] {
			a[p] = v
		}
	}
	return a
}
