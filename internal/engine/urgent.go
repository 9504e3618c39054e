package engine

import (
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
)

// Urgent mode.
//
// Piece priorities alone do not make a seek fast with the torrent library (v1.59.1): a peer
// connection keeps asking for the readahead's pieces, and anacrolix seeders serve a
// connection's requests in random order. So when a reader jumps to a piece that is not there
// (or sits blocked on one for readStallUrge), the task goes urgent:
//
//  1. only the pieces readers are waiting for stay wanted: the ledger applies only Now
//     claims and the task's files drop to priority None, so every request a connection
//     makes from then on is for those pieces;
//  2. a watchdog ends urgent mode when the pieces are verified, or after urgentMax, and
//     pokes the connections (see poke) only when no block has arrived for urgentQuiet.
//
// It neither cancels queued requests nor pokes while blocks arrive. It once did both (a
// "kick" cancelling and re-issuing every request, then a poke every 25 ms), and against
// qBittorrent that made every cold read take about 1.6 s: the library answers the rejects
// of a cancelled batch by asking for nothing (requesting.go: no requests on a reject), the
// pokes then ran request updates while one request was outstanding, and since the library
// sizes a connection's request window by what its last update added, the window stayed at
// one block. One block per poke is 64 blocks of a 1 MiB piece in 64 × 25 ms. (libtorrent
// also holds a block back until its small header is acknowledged, which our kernel delayed
// by 40 ms; dialled TCP connections now acknowledge at once, see quickack.go.) Without the
// kick and the steady pokes the window grows as blocks arrive, and a seek there takes a
// few tens of ms (docs/benchmarks.md). A connection that really stops delivering is closed
// by the peer watchdog instead (peers.go), which hands its requests to the other peers. A
// jump to pieces nobody has asked for while a connection's queue is deep cancels that queue
// once (kick.go), with the window widened so that the new pieces' requests follow the
// cancels at once, and rejects wake idle connections without waiting for urgentQuiet.
//
// The poke wakes only connections with nothing outstanding, by making a piece urgent mode
// holds back wanted and unwanted again (see poke); it used to toggle uploads, which ran an
// update on every connection and so also shrank the busy ones' windows to one request.
// Neither way sends anything aria2 1.36 counts as flooding (two in 5 s close the
// connection): it counts every keep-alive, but a choke or unchoke only when, after applying
// it, its record of our choking still differs from the message, which happens only while it
// fetches a magnet's metadata and skips applying them (TestRealClientPokedSeeks).
const (
	urgentWatchInterval = 25 * time.Millisecond
	// urgentQuiet is how long the task may receive no block while urgent before the
	// watchdog pokes its connections (a connection whose requests were rejected asks again
	// only when poked).
	urgentQuiet = 250 * time.Millisecond
	urgentMax   = 10 * time.Second
	urgentTail  = time.Second
	// readStallUrge is how long a sequential read may block before the task goes urgent.
	readStallUrge = time.Second
)

// urgency is a task's urgent-mode state.
type urgency struct {
	mu       sync.Mutex
	waiting  map[*Reader][]int // guarded by mu; the pieces each urgent reader waits for
	on       bool              // guarded by mu
	since    time.Time         // guarded by mu
	watching bool              // guarded by mu; the watchdog runs
	stopped  bool              // guarded by mu; the task is shutting down

	applyMu sync.Mutex // serialises applying on to the torrent
	applied bool       // guarded by applyMu
}

// urge puts the task in urgent mode for reader r, which waits for pieces.
func (t *Task) urge(r *Reader, pieces []int) {
	t.urg.mu.Lock()
	if t.urg.stopped || len(pieces) == 0 {
		t.urg.mu.Unlock()
		return
	}
	if t.urg.waiting == nil {
		t.urg.waiting = make(map[*Reader][]int)
	}
	t.urg.waiting[r] = pieces
	if !t.urg.on {
		t.urg.on, t.urg.since = true, time.Now()
	}
	if !t.urg.watching {
		t.urg.watching = true
		// Started under urg.mu after the stopped check: shutdown sets stopped before the
		// engine waits for its goroutines.
		t.e.wg.Go(t.watchUrgency)
	}
	t.urg.mu.Unlock()
	t.prio.setFirst(r, true)
	t.syncUrgency()
}

// unurge drops reader r from urgent mode, entirely or (onlyDone) for the pieces it waited
// for that are now verified; the task leaves urgent mode when no reader waits.
func (t *Task) unurge(r *Reader, onlyDone bool) {
	t.urg.mu.Lock()
	pieces, ok := t.urg.waiting[r]
	if ok {
		if onlyDone {
			pieces = t.incomplete(pieces)
		} else {
			pieces = nil
		}
		if len(pieces) == 0 {
			delete(t.urg.waiting, r)
		} else {
			t.urg.waiting[r] = pieces
		}
	}
	changed := ok && len(t.urg.waiting) == 0
	if changed {
		t.urg.on = false
	}
	_, still := t.urg.waiting[r]
	t.urg.mu.Unlock()
	if !still {
		t.prio.setFirst(r, false)
	}
	if changed {
		t.syncUrgency()
	}
}

// incomplete filters pieces down to those not verified yet (reusing the slice).
func (t *Task) incomplete(pieces []int) []int {
	out := pieces[:0]
	for _, p := range pieces {
		if !t.tor.Piece(p).State().Complete {
			out = append(out, p)
		}
	}
	return out
}

// syncUrgency applies the current urgent state to the torrent's priorities.
func (t *Task) syncUrgency() {
	t.urg.applyMu.Lock()
	defer t.urg.applyMu.Unlock()
	t.urg.mu.Lock()
	want := t.urg.on
	t.urg.mu.Unlock()
	if want == t.urg.applied || t.isDone() {
		return
	}
	t.urg.applied = want
	if want {
		t.prio.setUrgent(true)
		t.setFilePriorities(torrent.PiecePriorityNone)
	} else {
		t.setFilePriorities(torrent.PiecePriorityNormal)
		t.prio.setUrgent(false)
	}
}

// setFilePriorities sets the priority of the files the task downloads: the selected file of
// a stream task, every file otherwise.
func (t *Task) setFilePriorities(prio torrent.PiecePriority) {
	if t.seeded || !t.hasInfo() {
		return
	}
	t.mu.Lock()
	sel, failed := t.selected, t.err != nil
	t.mu.Unlock()
	if failed {
		return
	}
	tfs := t.tor.Files()
	if t.stream {
		if sel >= 0 {
			tfs[sel].SetPriority(prio)
		}
		return
	}
	for _, f := range tfs {
		f.SetPriority(prio)
	}
}

// pieceRange returns the pieces of the files the task downloads (as setFilePriorities
// picks them): the selected file's of a stream task, all otherwise. ok is false for a stream
// task with no file selected.
func (t *Task) pieceRange() (begin, end int, ok bool) {
	if !t.stream {
		return 0, t.tor.NumPieces(), true
	}
	t.mu.Lock()
	sel := t.selected
	t.mu.Unlock()
	if sel < 0 {
		return 0, 0, false
	}
	f := t.tor.Files()[sel]
	return f.BeginPieceIndex(), f.EndPieceIndex(), true
}

// poke makes the peer connections that have nothing outstanding ask for what is wanted, and
// leaves the others alone. The library (v1.59.1) runs a connection's request update only when
// something wakes it, and a reject (the answer of libtorrent and aria2 to a cancel) wakes it
// for nothing: the update it runs adds no request. One thing wakes exactly the connections
// that are idle: a piece that becomes wanted (pending, in the library's words) makes every
// connection that has the piece, has no request outstanding and is not choking us run an
// update, with a reason that lets it add requests. So poke makes a piece that is not wanted
// wanted and unwanted again (pulse). The update runs on each connection's writer after
// that and asks, by priority, for what readers wait on; the pulsed piece has the lowest
// priority, so if a writer runs between the two changes it may ask for some of it as well,
// and those blocks are kept. Nothing goes on the wire but the requests.
//
// The piece is one of the task's, not wanted now, missing, and next after the read head
// where possible (what urgent mode holds back), chosen so that no connection's interest
// changes: every connection that has it must also have a piece that stays wanted, or the
// library could tell that peer "interested" and then "not interested", and unchoke and choke
// it (it unchokes peers that have something we want). When the task has no such piece
// (outside urgent mode a streamed file is wanted whole), poke falls back to toggling
// uploads (DisallowDataUpload, AllowDataUpload), which runs a request update on every
// connection: the busy ones then size their request window by what that update added,
// which is nothing when their queue is full, so their window starts again from one request.
// It reports whether it pulsed a piece (false: it toggled uploads, or did nothing).
func (t *Task) poke() (pulsed bool) {
	t.flagMu.Lock()
	defer t.flagMu.Unlock()
	if !t.dlAllowed || t.stopped || !t.hasInfo() {
		return false
	}
	if t.pulseLocked() {
		return true
	}
	t.tor.DisallowDataUpload()
	if t.ulAllowed {
		t.tor.AllowDataUpload()
	}
	return false
}

// pulseIdle is poke without its fallback: it pulses a piece if the task has one to pulse,
// and otherwise does nothing.
func (t *Task) pulseIdle() {
	t.flagMu.Lock()
	defer t.flagMu.Unlock()
	if t.dlAllowed && !t.stopped && t.hasInfo() {
		t.pulseLocked()
	}
}

// pulseLocked pulses the piece pokePiece picks, if any. t.flagMu must be held.
func (t *Task) pulseLocked() bool {
	p := t.pokePiece()
	return p >= 0 && t.prio.pulse(p)
}

// pokeScan bounds how many candidate pieces pokePiece weighs.
const pokeScan = 64

// pokePiece returns the piece poke pulses, or -1 when none is safe: a missing piece of the
// task's file(s) that is not wanted now, such that every connection that has it also has a
// wanted piece, preferring the piece that the most connections with a wanted piece have,
// then the first after the first wanted piece.
func (t *Task) pokePiece() int {
	begin, end, ok := t.pieceRange()
	if !ok {
		return -1
	}
	var wanted, free []int
	firstWanted := -1
	i := 0
	for _, run := range t.tor.PieceStateRuns() {
		for range run.Length {
			if i >= begin && i < end {
				switch {
				case run.Priority != torrent.PiecePriorityNone:
					wanted = append(wanted, i)
					if firstWanted < 0 {
						firstWanted = i
					}
				case run.Ok && !run.Complete && !run.Checking && !run.Marking && !run.MissingPieceLayerHash:
					free = append(free, i)
				}
			}
			i++
		}
	}
	if len(wanted) == 0 || len(free) == 0 {
		return -1
	}
	// Candidates in order from the first wanted piece, wrapping around.
	start, _ := slices.BinarySearch(free, firstWanted)
	cands := append(slices.Clone(free[start:]), free[:start]...)
	if len(cands) > pokeScan {
		cands = cands[:pokeScan]
	}
	type conn struct {
		has       func(int) bool
		wantsSome bool
	}
	var conns []conn
	for _, pc := range t.tor.PeerConns() {
		bm := pc.PeerPieces()
		has := func(p int) bool { return bm.Contains(uint32(p)) }
		c := conn{has: has}
		for _, w := range wanted {
			if has(w) {
				c.wantsSome = true
				break
			}
		}
		conns = append(conns, c)
	}
	best, bestScore := -1, 0
	for _, p := range cands {
		score, safe := 0, true
		for _, c := range conns {
			if !c.has(p) {
				continue
			}
			if !c.wantsSome {
				safe = false
				break
			}
			score++
		}
		if safe && score > bestScore {
			best, bestScore = p, score
		}
	}
	return best
}

// pulse makes piece p wanted and unwanted again, so that the idle connections that have it
// run a request update (see poke). It does nothing, and returns false, when the ledger holds
// a priority for p. Defined here, beside its only caller; it holds the ledger's lock so that
// no claim changes p meanwhile.
func (l *ledger) pulse(p int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	if _, ok := l.applied[p]; ok {
		return false
	}
	l.set(p, prioNormal)
	l.set(p, prioNone)
	return true
}

// watchUrgency ends urgent mode when the pieces readers wait for are verified (or after
// urgentMax), and meanwhile and for urgentTail after pokes the connections whenever the task
// has received no block for urgentQuiet.
func (t *Task) watchUrgency() {
	tk := time.NewTicker(urgentWatchInterval)
	defer tk.Stop()
	var calmSince time.Time // when urgent mode last ended
	var got int64           // useful bytes received, at lastGot
	lastGot := time.Now()
	for {
		select {
		case <-t.done:
			t.urg.mu.Lock()
			t.urg.watching = false
			t.urg.mu.Unlock()
			return
		case <-tk.C:
		}
		now := time.Now()
		t.urg.mu.Lock()
		var gone []*Reader // readers no longer waiting: their claims stop coming first
		for r, pieces := range t.urg.waiting {
			if pieces = t.incomplete(pieces); len(pieces) == 0 {
				delete(t.urg.waiting, r)
				gone = append(gone, r)
			} else {
				t.urg.waiting[r] = pieces
			}
		}
		if t.urg.on && now.Sub(t.urg.since) > urgentMax {
			for r := range t.urg.waiting {
				gone = append(gone, r)
			}
			clear(t.urg.waiting)
			t.e.log.Debug("urgent mode timed out", "task", t.id)
		}
		ended := t.urg.on && len(t.urg.waiting) == 0
		if ended {
			t.urg.on = false
		}
		urgent := t.urg.on
		if urgent {
			calmSince = time.Time{}
		} else if calmSince.IsZero() {
			calmSince = now
		}
		if !urgent && now.Sub(calmSince) >= urgentTail {
			t.urg.watching = false
			t.urg.mu.Unlock()
			return
		}
		t.urg.mu.Unlock()
		for _, r := range gone {
			t.prio.setFirst(r, false)
		}
		if ended {
			t.syncUrgency()
		}
		st := t.tor.Stats()
		if n := st.BytesReadUsefulData.Int64(); n != got {
			got, lastGot = n, now
		} else if now.Sub(lastGot) >= urgentQuiet {
			lastGot = now
			t.poke()
		}
	}
}
