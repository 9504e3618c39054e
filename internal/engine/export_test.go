package engine

import (
	"fmt"
	"net"
)

// Hooks for the external tests.

// PiecePriorities returns the piece priorities the task's ledger applies (piece -> level,
// see the prio constants).
func PiecePriorities(t *Task) map[int]int {
	out := make(map[int]int)
	for p, v := range t.prio.snapshot() {
		out[p] = int(v)
	}
	return out
}

// LibraryPiecePriority returns the torrent library's effective priority of a piece.
func LibraryPiecePriority(t *Task, piece int) int {
	return int(t.tor.Piece(piece).State().Priority)
}

// PieceComplete reports whether the library has verified a piece.
func PieceComplete(t *Task, piece int) bool {
	return t.tor.Piece(piece).State().Complete
}

// PieceCompletionKnown reports whether the library has read a piece's completion from storage
// (until then it reports the piece's priority as None).
func PieceCompletionKnown(t *Task, piece int) bool {
	return t.tor.Piece(piece).State().Ok
}

// Urgent reports whether the task is in urgent mode.
func Urgent(t *Task) bool {
	t.urg.mu.Lock()
	defer t.urg.mu.Unlock()
	return t.urg.on
}

// Priority levels, for tests.
const (
	PrioNone      = int(prioNone)
	PrioNormal    = int(prioNormal)
	PrioHigh      = int(prioHigh)
	PrioReadahead = int(prioReadahead)
	PrioNext      = int(prioNext)
	PrioNow       = int(prioNow)
)

var (
	Window         = window
	BuildLayout    = buildLayout
	SanitizePath   = sanitizePath
	CheckInfo      = checkInfo
	DecodeMetainfo = decodeMetainfo
)

func LayoutPaths(l *layout) []string { return l.paths }
func LayoutRenamed(l *layout) int    { return l.renamed }

// DebugTask describes the task's urgent mode and transfer flags.
func DebugTask(t *Task) string {
	t.urg.mu.Lock()
	w := fmt.Sprint(t.urg.waiting)
	on, watching := t.urg.on, t.urg.watching
	t.urg.mu.Unlock()
	t.flagMu.Lock()
	dl, ul := t.dlAllowed, t.ulAllowed
	t.flagMu.Unlock()
	var prios []string
	for _, f := range t.tor.Files() {
		prios = append(prios, fmt.Sprint(f.Priority()))
	}
	return fmt.Sprintf("urgent=%v watching=%v waiting=%s applied=%v dl=%v ul=%v files=%v ledger=%v",
		on, watching, w, t.urg.applied, dl, ul, prios, t.prio.snapshot())
}

// VerifyPending returns how many pieces of the task wait to be verified again (see
// integrity.go), or -1 when its storage has no integrity state.
func VerifyPending(t *Task) int {
	v := t.ver.Load()
	if v == nil {
		return -1
	}
	return v.pending()
}

// StorageDropped reports whether the torrent library closed the task's storage.
func StorageDropped(t *Task) bool {
	r := t.res.Load()
	return r != nil && r.dropped.Load()
}

// SetReadGate makes every piece read of every engine in the process call gate first, until
// the returned function is called.
func SetReadGate(gate func()) (restore func()) {
	readGate.Store(&gate)
	return func() { readGate.Store(nil) }
}

// RequestWindowFloorFound reports whether the engine found the library's request-window
// count (window.go).
func RequestWindowFloorFound() bool { return peakRequestsFound }

// SetQuickAckReadHook makes every quick-ack connection (quickack.go) of every engine in the
// process call hook after each read that returned data, before (after=false) and after it
// switches the socket to quick-ack mode, until the returned function is called.
func SetQuickAckReadHook(hook func(c *net.TCPConn, after bool)) (restore func()) {
	quickAckReadHook.Store(&hook)
	return func() { quickAckReadHook.Store(nil) }
}

// RequestCeilings returns, per connection the engine watches, its request ceiling (0: none
// yet), the most requests outstanding in a batch that started under a ceiling, and how many
// such batches there were.
func RequestCeilings(e *Engine) [][3]int {
	w := e.peers
	w.mu.Lock()
	defer w.mu.Unlock()
	var out [][3]int
	for _, s := range w.conns {
		out = append(out, [3]int{s.ceiling, s.ceiledMax, s.ceiledBatches})
	}
	return out
}

// SentBehindKick returns the most requests any connection of e sent right behind a kick's
// cancels, before the peer sent a block or a reject (kick.go, window.go).
func SentBehindKick(e *Engine) int {
	w := e.peers
	w.mu.Lock()
	defer w.mu.Unlock()
	most := 0
	for _, s := range w.conns {
		most = max(most, s.behindKickMax)
	}
	return most
}

// IdleTicks returns, per connection of e by its remote address, the ticks of the idle watch
// (idlewake.go) while its task was incomplete and how many of them found it idle.
func IdleTicks(e *Engine) map[string][2]int {
	w := e.peers
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string][2]int)
	for p, s := range w.conns {
		out[addrString(p.RemoteAddr)] = [2]int{s.ticks, s.idleTicks}
	}
	return out
}

// SetIdleWake turns the waking of idle connections (idlewake.go) on or off, until the returned
// function is called.
func SetIdleWake(on bool) (restore func()) {
	wakeIdleOff.Store(!on)
	return func() { wakeIdleOff.Store(false) }
}

// HalfOpenPeers returns how many outgoing connection attempts of the task are under way: from
// the dial until the handshakes complete or fail.
func HalfOpenPeers(t *Task) int { return t.tor.Stats().HalfOpenPeers }
