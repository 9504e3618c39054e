package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"github.com/anacrolix/torrent/types/infohash"
)

// Stalled peer connections.
//
// A connection can stop carrying data while it stays up. The one seen in practice is uTP
// between the library's cgo libutp and libtorrent 2.0 (qBittorrent, Deluge): a burst from the
// seeder overflows our UDP socket's receive buffer on a fast link, our selective ACKs cover
// only the 32 packets after the hole, and the seeder then neither fast-resends nor times out
// for about a minute while both sides keep exchanging keep-alives. Reads waiting for the
// blocks requested on that connection wait with it. The engine now gives that socket a
// receive buffer large enough for the bursts (utp.go), which removed the stalls we could
// reproduce; what follows contains the ones that remain (a router that drops a burst does
// the same).
//
// So the engine watches every connection: one that unchokes us but delivers no block for
// peerStallTimeout after we asked for one is closed, which returns its requests to the other
// peers at once, and its address is added again, with backoff, until a new connection to it
// exists (see redial): a peer that speaks uTP alone gets a new uTP connection a few seconds
// after the stall (TestRealClientUTPOnlyStallRecovers: 2.5-8 s under -race). A uTP connection
// that stalled marks its address: from then on the engine dials that peer over TCP first,
// and closes incoming uTP connections from it once TCP to it works (a peer reachable over uTP
// alone keeps uTP, and each stall costs it peerStallTimeout plus the redial). Besides, the
// engine prefers TCP wherever both work: it dials uTP only utpDialDelay after TCP, and not
// at all once TCP connected. Every stall and every reconnection is logged at info level.
const (
	peerStallTimeout = 4 * time.Second
	utpDialDelay     = 500 * time.Millisecond
	// utpStalledDialDelay replaces utpDialDelay for a peer whose uTP stalled.
	utpStalledDialDelay = 3 * time.Second
	// A closed peer is added again after redialFirst, then at intervals doubling up to
	// redialMaxInterval, until a connection to it exists or redialFor has passed.
	redialFirst       = time.Second
	redialMaxInterval = 4 * time.Second
	redialFor         = 2 * time.Minute
	// tcpRetryFor bounds how long after a TCP connection without a handshake tasks still
	// add its peer again (see tcpRetry).
	tcpRetryFor = 30 * time.Second
	// tcpHandshakeGrace is how long a TCP connection gets to complete its BitTorrent
	// handshake before it counts as useless; tcpRest is how long TCP to a peer that closed
	// it rests.
	tcpHandshakeGrace = 2 * time.Second
	tcpRest           = 5 * time.Minute
	// peerMemory bounds how long an address stays marked (uTP stalled, TCP worked).
	peerMemory = 30 * time.Minute
	// maxRememberedPeers bounds the address maps; the oldest half is forgotten beyond it.
	maxRememberedPeers = 4096
	// A leecher whose connection ends within droppedWithin of its start is added again up to
	// droppedRedials times (see seenConn).
	droppedWithin  = 30 * time.Second
	droppedRedials = 3
	// A connection trickles (see trickling) when, over the last trickleWindow, we were
	// waiting for its blocks at least trickleBusy of the time, it delivered fewer than
	// trickleMaxRate blocks a second, another connection of the task delivered at least
	// trickleFactor times as fast and at least trickleMinBest blocks a second, and what it
	// owes would take it longer than trickleDrain at its rate.
	trickleWindow  = peerStallTimeout
	trickleBusy    = 3 * time.Second
	trickleDrain   = 2 * time.Second
	trickleFactor  = 10
	trickleMaxRate = 8.0 // blocks per second: 128 KiB/s
	trickleMinBest = 4.0 // blocks per second: 64 KiB/s
)

var (
	errPreferTCP  = errors.New("TCP works with this peer; uTP not needed")
	errTCPUseless = errors.New("this peer closes TCP connections before the handshake")
)

// peerWatch follows every peer connection through the torrent library's callbacks (which run
// with the library's lock held, so they only touch this struct): the requests we sent it,
// whether it chokes us, and since when it owes us a block. Safe for concurrent use.
type peerWatch struct {
	mu         sync.Mutex                     // guards the fields below
	conns      map[*torrent.Peer]*peerState   // connections we have heard from or asked
	utpStalled map[string]time.Time           // remote address → when uTP to it stalled
	tcpOK      map[string]time.Time           // remote address → when TCP to it last connected
	tcpFailed  map[string]time.Time           // remote address → when a TCP dial to it last failed
	tcpDialed  map[string]time.Time           // remote address → when a TCP dial to it last connected
	redial     map[*Task]map[string]*redial   // peers closed by checkPeers, to add again until connected
	tcpRetry   map[string]*tcpRetry           // remote address → a TCP connection that may complete no handshake
	seen       map[*Task]map[string]*seenConn // dial address → the task's connection to it, as checkPeers saw it
	now        func() time.Time               // the clock; time.Now outside tests
	rejected   chan struct{}                  // signalled when a peer rejects a request (kick.go)
}

// redial is a peer that checkPeers closed and adds again, with backoff, until a connection
// to it exists or redialFor has passed. Once is not enough: the library drops an address
// added while the closed connection is still being torn down, the first dial may go to a TCP
// port that accepts and closes (see tcpUseless) before uTP gets its turn, and a peer may
// refuse a new connection while its side of the old one lives.
//
// Peers the engine is given directly (a magnet's x.pe, [Task.AddPeers]) are added again the
// same way until a connection exists: the library dials an added address once, and against
// a peer that accepts TCP only to close it (libtorrent with uTP only) that one attempt fails
// (see tcpUseless), so without a second one such a peer is never reached.
type redial struct {
	info     torrent.PeerInfo
	stalled  bool      // checkPeers closed a stalled connection to it; else a direct or dropped peer
	maxTries int       // give up after this many tries; 0: after redialFor
	network  string    // the closed connection's network
	closedAt time.Time // when checkPeers closed it
	next     time.Time // when to add the peer again
	interval time.Duration
	tries    int // how often the peer was added again
}

// tcpRetry is a TCP connection to a peer whose TCP has not completed a handshake before.
// The library dials an address once per time it learns it (from a tracker, say) and takes
// the first connection any dialer makes: against a peer that accepts TCP only to close it
// (libtorrent with uTP only) that attempt fails, and the peer is tried again only when a
// tracker or the peer itself brings it back, about a minute later (TestRealClientUTPOnly's
// first read took 61 s in 2 of 3 runs). So once such a connection is tcpHandshakeGrace old
// without a handshake, every task without a connection to the peer adds it again, once:
// the next dial skips TCP (tcpUseless) and uTP connects.
type tcpRetry struct {
	dialed time.Time
	done   map[*Task]bool // tasks that added the peer again
}

// seenConn is a connection of a task as checkPeers last saw it. A peer lacking pieces (a
// leecher) whose connection ends within droppedWithin of its start, not closed by checkPeers,
// is added again, up to droppedRedials times. Transmission 3.00 restarts a torrent, closing
// every connection, as soon as it has a magnet's metadata, and it dials no peer at a
// 127.0.0.0/8 address; a peer behind NAT cannot be dialled at all. Either way a seeder that
// waited for the leecher to come back waited for its own next announce (60 s against the
// test tracker, half an hour against many public ones): TestRealClientsLeech/transmission took
// 2 minutes for 8 MiB, of which the transfer was 3 s.
type seenConn struct {
	since   time.Time // when checkPeers first saw it
	leecher bool      // the peer lacked a piece when last looked at
}

type peerState struct {
	listenPort  int         // the peer's listen port from its extended handshake, 0 if unknown
	outstanding int         // our requests not yet answered or cancelled
	byPiece     map[int]int // outstanding, by piece (kick.go)
	// Where a piece's requests sit in the peer's queue (kick.go): requests sent and
	// requests gone (answered or cancelled) over the connection's life, and for each piece
	// with requests outstanding the number its first one was sent as.
	sentSeq, doneSeq int
	firstSeq         map[int]int
	// cancelled holds the requests a kick cancelled (kick.go) that the peer still has to
	// answer, with the block or a reject (only for peers that answer cancels,
	// answersCancels: others drop a cancelled request silently).
	kicking   bool // a kick cancels the connection's requests now
	kickFast  bool // the peer answers a cancel (answersCancels)
	cancelled map[reqKey]struct{}
	// For tests: whether no block or reject has been read since the last kick, the
	// requests sent meanwhile (right behind the cancels, in the window openWindowAfterKick
	// keeps open), and the most of those over all kicks.
	kickUnanswered bool
	behindKick     int
	behindKickMax  int
	choked         bool      // the peer chokes us (it owes us nothing then)
	askedAt        time.Time // since when we wait for a block from it; zero when we wait for none
	// For trickling: blocks received, time spent with requests outstanding (expecting, plus
	// the open spell since expectSince), and checkPeers' samples of both.
	blocks      int
	expecting   time.Duration
	expectSince time.Time
	samples     []rateSample
	// ceiling bounds the connection's request window (window.go), 0 while its rate is unknown;
	// set from the samples. For tests: the most requests outstanding in a batch that started
	// under a ceiling, and how many such batches there were.
	ceiling       int
	batchCeiled   bool
	ceiledMax     int
	ceiledBatches int
	// For tests: wakeIdle's ticks while the task was incomplete, and those on which the
	// connection was idle (idlewake.go).
	ticks, idleTicks int
}

// rateSample is a connection's block count and time spent expecting blocks at one moment.
type rateSample struct {
	at        time.Time
	blocks    int
	expecting time.Duration
}

func newPeerWatch() *peerWatch {
	return &peerWatch{
		conns:      make(map[*torrent.Peer]*peerState),
		utpStalled: make(map[string]time.Time),
		tcpOK:      make(map[string]time.Time),
		tcpFailed:  make(map[string]time.Time),
		tcpDialed:  make(map[string]time.Time),
		redial:     make(map[*Task]map[string]*redial),
		tcpRetry:   make(map[string]*tcpRetry),
		seen:       make(map[*Task]map[string]*seenConn),
		now:        time.Now,
		rejected:   make(chan struct{}, 1),
	}
}

// install registers the watch's callbacks in the client config.
func (w *peerWatch) install(cb *torrent.Callbacks) {
	cb.SentRequest = append(cb.SentRequest, func(ev torrent.PeerRequestEvent) {
		ceiling, pending := w.sent(ev.Peer, int(ev.Request.Index))
		setRequestWindow(ev.Peer, ceiling, pending) // window.go
	})
	cb.DeletedRequest = append(cb.DeletedRequest, func(ev torrent.PeerRequestEvent) {
		if n := w.deleted(ev.Peer, ev.Request); n > 0 {
			openWindowAfterKick(ev.Peer, n) // kick.go
		}
	})
	cb.PeerClosed = append(cb.PeerClosed, w.closed)
	prevEH := cb.ReadExtendedHandshake
	cb.ReadExtendedHandshake = func(pc *torrent.PeerConn, m *pp.ExtendedHandshakeMessage) {
		if prevEH != nil {
			prevEH(pc, m)
		}
		w.mu.Lock()
		w.state(&pc.Peer).listenPort = m.Port
		w.mu.Unlock()
	}
	prevHS := cb.CompletedHandshake
	cb.CompletedHandshake = func(pc *torrent.PeerConn, ih infohash.T) {
		if prevHS != nil {
			prevHS(pc, ih)
		}
		// TCP works with a peer once a BitTorrent handshake completes over it: a peer may
		// accept TCP connections and close them at once (libtorrent with TCP turned off).
		if !isUTP(pc.Network) {
			w.noteTCP(addrString(pc.RemoteAddr), true)
		}
	}
	prevMsg := cb.ReadMessage
	cb.ReadMessage = func(pc *torrent.PeerConn, m *pp.Message) {
		if prevMsg != nil {
			prevMsg(pc, m)
		}
		if !m.Keepalive { // a keep-alive's zero Type reads as Choke
			w.read(&pc.Peer, m.Type, reqKey{uint32(m.Index), uint32(m.Begin)})
		}
	}
}

// state returns p's state, creating it. w.mu must be held.
func (w *peerWatch) state(p *torrent.Peer) *peerState {
	s := w.conns[p]
	if s == nil {
		s = &peerState{choked: true}
		w.conns[p] = s
	}
	return s
}

// sent starts the wait for a block unless one is under way, and returns the connection's
// request ceiling (0: none) and the kick's cancels the peer has yet to answer (pending). The
// library counts those cancels against the window too, while the floor and the ceiling are
// meant for requests (window.go), so the ceiling returned is raised by pending. Requests
// cancelled and issued again (urgent mode's kicks) keep the wait's start: a kick must not
// hide a stall.
func (w *peerWatch) sent(p *torrent.Peer, piece int) (ceiling, pending int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.state(p)
	if s.byPiece == nil {
		s.byPiece = make(map[int]int)
		s.firstSeq = make(map[int]int)
	}
	s.sentSeq++
	if s.byPiece[piece] == 0 {
		s.firstSeq[piece] = s.sentSeq
	}
	s.byPiece[piece]++
	if s.outstanding == 0 {
		s.expectSince = w.now()
		s.batchCeiled = s.ceiling > 0
		if s.batchCeiled {
			s.ceiledBatches++
		}
	}
	s.outstanding++
	if s.batchCeiled {
		s.ceiledMax = max(s.ceiledMax, s.outstanding)
	}
	if s.askedAt.IsZero() {
		s.askedAt = w.now()
	}
	if s.kickUnanswered {
		s.behindKick++
		s.behindKickMax = max(s.behindKickMax, s.behindKick)
	}
	pending = len(s.cancelled)
	if s.ceiling == 0 {
		return 0, pending
	}
	return s.ceiling + pending, pending
}

// deleted notes that request req of p is no longer outstanding. While a kick cancels the
// requests of a peer that answers cancels, it returns how many cancels that peer has yet to
// answer, this one included, else 0.
func (w *peerWatch) deleted(p *torrent.Peer, req torrent.Request) (kicked int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	piece := int(req.Index)
	if s := w.conns[p]; s != nil && s.kicking {
		if s.kickFast {
			if s.cancelled == nil {
				s.cancelled = make(map[reqKey]struct{})
			}
			s.cancelled[reqKey{uint32(req.Index), uint32(req.Begin)}] = struct{}{}
			// Every cancel still unanswered, this kick's and an earlier one's: the
			// library counts them all against the window.
			kicked = len(s.cancelled)
		}
	}
	if s := w.conns[p]; s != nil && s.byPiece[piece] > 0 {
		s.doneSeq++
		if s.byPiece[piece]--; s.byPiece[piece] == 0 {
			delete(s.byPiece, piece)
			delete(s.firstSeq, piece)
		}
	}
	if s := w.conns[p]; s != nil && s.outstanding > 0 {
		s.outstanding--
		if s.outstanding == 0 && !s.expectSince.IsZero() {
			s.expecting += w.now().Sub(s.expectSince)
			s.expectSince = time.Time{}
		}
	}
	return kicked
}

// reqKey names a block request by its piece and offset.
type reqKey struct{ index, begin uint32 }

// read notes the messages that matter: a block restarts the wait (or ends it when nothing
// else is owed), a choke suspends it, an unchoke restarts it, and the last answer to a
// kick's cancels ends it when nothing else is owed. key is the request a block or a reject
// answers.
func (w *peerWatch) read(p *torrent.Peer, t pp.MessageType, key reqKey) {
	if t == pp.Reject {
		select { // kick.go
		case w.rejected <- struct{}{}:
		default:
		}
	}
	if t != pp.Piece && t != pp.Choke && t != pp.Unchoke && t != pp.Reject {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.state(p)
	if t == pp.Piece || t == pp.Reject {
		s.kickUnanswered = false
	}
	switch t {
	case pp.Choke:
		s.choked = true
	case pp.Unchoke:
		s.choked = false
		if !s.askedAt.IsZero() {
			s.askedAt = w.now()
		}
	case pp.Piece:
		// What the peer owes after this block: the requests outstanding (the library
		// reports the message before it deletes the request the block answers, so that
		// request is still counted here, unless it is one a kick cancelled) and the kick's
		// cancels not answered yet. A kick leaves nothing outstanding while the peer still
		// owes the answers to its cancels: if the link dies then, the blocks already on
		// their way must not end the wait, or the stall would never be seen.
		s.blocks++
		owed := s.outstanding + len(s.cancelled)
		if _, ok := s.cancelled[key]; ok {
			delete(s.cancelled, key)
			owed--
		} else if s.outstanding > 0 {
			owed--
		}
		s.askedAt = time.Time{}
		if owed > 0 {
			s.askedAt = w.now()
		}
	case pp.Reject:
		// The answer to one of a kick's cancels; the last answer of all ends the wait.
		if _, ok := s.cancelled[key]; ok {
			delete(s.cancelled, key)
			if s.outstanding == 0 && len(s.cancelled) == 0 {
				s.askedAt = time.Time{}
			}
		}
	}
}

func (w *peerWatch) closed(p *torrent.Peer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.conns, p)
}

// stalledFor returns how long p, while unchoking us, has owed us a block: since the first
// request after its last block. Cancelled requests count: a peer that delivers nothing at
// all is stalled even when we gave up on what we asked it for.
func (w *peerWatch) stalledFor(p *torrent.Peer, now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.conns[p]
	if s == nil || s.choked || s.askedAt.IsZero() {
		return 0
	}
	return now.Sub(s.askedAt)
}

// rate samples p's delivery at now and returns, over the last trickleWindow or more: the
// blocks it delivered, the time we spent waiting for its blocks, and the span covered (less
// than trickleWindow while the connection is younger), and how many blocks p owes us (0
// while it chokes us).
func (w *peerWatch) rate(p *torrent.Peer, now time.Time) (blocks int, expecting, span time.Duration, owing int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.conns[p]
	if s == nil {
		return 0, 0, 0, 0
	}
	exp := s.expecting
	if !s.expectSince.IsZero() {
		exp += now.Sub(s.expectSince)
	}
	s.samples = append(s.samples, rateSample{at: now, blocks: s.blocks, expecting: exp})
	// Keep the newest sample at least trickleWindow old, and the ones after it.
	for len(s.samples) > 1 && now.Sub(s.samples[1].at) >= trickleWindow {
		s.samples = s.samples[1:]
	}
	old := s.samples[0]
	if !s.choked {
		owing = s.outstanding
	}
	if c := requestQueueCeiling(s.blocks-old.blocks, exp-old.expecting); c > 0 {
		s.ceiling = c
	}
	return s.blocks - old.blocks, exp - old.expecting, now.Sub(old.at), owing
}

// trickling returns the connections among conns that deliver far below what we ask of them
// while another delivers well (see trickleWindow): a link that carries a block every second
// or two never looks stalled, but holds its requests, the blocks a reader waits for among
// them, for minutes. It samples every connection; call it once per checkPeers tick.
func (w *peerWatch) trickling(conns []*torrent.PeerConn, now time.Time) map[*torrent.PeerConn]float64 {
	type obs struct {
		pc    *torrent.PeerConn
		rate  float64 // blocks per second while expecting
		judge bool    // long and busy enough to be judged
		owing int
	}
	var all []obs
	for _, pc := range conns {
		blocks, exp, span, owing := w.rate(&pc.Peer, now)
		o := obs{pc: pc, owing: owing}
		if exp >= time.Second {
			o.rate = float64(blocks) / exp.Seconds()
		}
		o.judge = span >= trickleWindow && exp >= trickleBusy && owing > 0
		all = append(all, o)
	}
	var out map[*torrent.PeerConn]float64
	for i, o := range all {
		if !o.judge || o.rate >= trickleMaxRate || float64(o.owing) <= o.rate*trickleDrain.Seconds() {
			continue
		}
		best := 0.0
		for j, other := range all {
			if j != i {
				best = max(best, other.rate)
			}
		}
		if best >= trickleMinBest && best >= trickleFactor*o.rate {
			if out == nil {
				out = make(map[*torrent.PeerConn]float64)
			}
			out[o.pc] = o.rate
		}
	}
	return out
}

// markUTPStalled remembers that uTP to addr stalled.
func (w *peerWatch) markUTPStalled(addr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	remember(w.utpStalled, addr, w.now())
}

func (w *peerWatch) utpBlocked(addr string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.utpStalled[addr]
	return ok && w.now().Sub(at) < peerMemory
}

// noteTCP records that a BitTorrent handshake over TCP with addr completed (ok) or that a
// TCP dial to it failed.
func (w *peerWatch) noteTCP(addr string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok {
		remember(w.tcpOK, addr, w.now())
		delete(w.tcpFailed, addr)
	} else {
		remember(w.tcpFailed, addr, w.now())
	}
}

// tcpConnected records a TCP connection to addr. A connection after one that completed no
// handshake keeps the first one's time, so that tcpUseless sees how long TCP has failed.
func (w *peerWatch) tcpConnected(addr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if at, ok := w.tcpDialed[addr]; ok && !w.tcpOK[addr].After(at) && w.now().Sub(at) < tcpRest {
		return
	}
	remember(w.tcpDialed, addr, w.now())
	if at, ok := w.tcpOK[addr]; (!ok || w.now().Sub(at) >= peerMemory) && len(w.tcpRetry) < maxRememberedPeers {
		w.tcpRetry[addr] = &tcpRetry{dialed: w.now(), done: make(map[*Task]bool)}
	}
}

// tcpRetryPeers returns the peers task t should add again (see tcpRetry): those whose TCP
// connection is over tcpHandshakeGrace old without a handshake, t has not added again yet,
// and t is not connected to. Entries are dropped tcpRetryFor after the dial.
func (w *peerWatch) tcpRetryPeers(t *Task, connected map[string]string, now time.Time) []torrent.PeerInfo {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []torrent.PeerInfo
	for a, r := range w.tcpRetry {
		since := now.Sub(r.dialed)
		ok, handshook := w.tcpOK[a]
		switch {
		case handshook && !ok.Before(r.dialed) || since > tcpRetryFor:
			delete(w.tcpRetry, a)
		case since > tcpHandshakeGrace && !r.done[t]:
			r.done[t] = true
			if connected[a] == "" {
				out = append(out, torrent.PeerInfo{Addr: torrent.StringAddr(a), Source: torrent.PeerSourceDirect})
			}
		}
	}
	return out
}

// tcpUseless reports whether the last TCP connection to addr, made more than
// tcpHandshakeGrace ago and less than tcpRest ago, completed no BitTorrent handshake, and no
// TCP handshake with addr completed within peerMemory before it. A peer whose TCP worked is
// not one that has TCP turned off: when it refuses a connection it is for another reason, the
// commonest being libtorrent's one connection per IP address while it still holds an old
// connection from us that we closed without its knowing (a link cut both ways). Resting TCP
// then while the dialer vetoes uTP for a peer whose TCP worked (errPreferTCP) left no way to
// reach it at all for tcpRest (TestRealClientQBittorrentOneConnectionPerIP).
func (w *peerWatch) tcpUseless(addr string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	dialed, ok := w.tcpDialed[addr]
	if !ok {
		return false
	}
	since := w.now().Sub(dialed)
	worked, ok := w.tcpOK[addr]
	if ok && !worked.After(dialed) && dialed.Sub(worked) < peerMemory {
		return false
	}
	return since > tcpHandshakeGrace && since < tcpRest && !worked.After(dialed)
}

// tcpHopeless reports whether TCP to addr is known not to work just now: its last dial
// failed, or its last connection completed no handshake. For such a peer (libtorrent with
// uTP only) waiting for TCP before a uTP dial only lengthens a stall.
func (w *peerWatch) tcpHopeless(addr string) bool {
	if w.recent(w.tcpOK, addr) {
		return false
	}
	return w.tcpUseless(addr) || w.recent(w.tcpFailed, addr)
}

// recent reports whether m holds addr from within peerMemory.
func (w *peerWatch) recent(m map[string]time.Time, addr string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := m[addr]
	return ok && w.now().Sub(at) < peerMemory
}

// remember sets m[k] = at, forgetting the older half of m first when it is full.
func remember(m map[string]time.Time, k string, at time.Time) {
	if _, ok := m[k]; !ok && len(m) >= maxRememberedPeers {
		var ts []time.Time
		for _, t := range m {
			ts = append(ts, t)
		}
		slices.SortFunc(ts, time.Time.Compare)
		cut := ts[len(ts)/2]
		for a, t := range m {
			if !t.After(cut) {
				delete(m, a)
			}
		}
	}
	m[k] = at
}

// peerDialer wraps one of the client's sockets as its dialer for peer connections: TCP
// first, uTP only after utpDialDelay and only when TCP has not connected to that address
// (see the comment at the top of this file).
type peerDialer struct {
	torrent.Dialer
	w *peerWatch
}

func (d peerDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if !isUTP(d.DialerNetwork()) {
		// The library takes the first connection that any dialer makes. A peer that
		// accepts TCP connections only to close them (libtorrent with TCP turned off) would
		// win every race and fail every handshake, so TCP to it rests for a while.
		if d.w.tcpUseless(addr) {
			return nil, errTCPUseless
		}
		c, err := d.Dialer.Dial(ctx, addr)
		switch {
		case err == nil:
			d.w.tcpConnected(addr)
			c = withQuickAck(c) // quickack.go
		case ctx.Err() == nil:
			d.w.noteTCP(addr, false)
		}
		return c, err
	}
	delay := utpDialDelay
	if d.w.utpBlocked(addr) && !d.w.tcpHopeless(addr) {
		delay = utpStalledDialDelay
	}
	tm := time.NewTimer(delay)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-tm.C:
	}
	// uTP only when TCP has not worked (a completed handshake): for a peer whose uTP stalled
	// TCP gets longer to prove itself.
	if d.w.recent(d.w.tcpOK, addr) {
		return nil, errPreferTCP
	}
	return d.Dialer.Dial(ctx, addr)
}

// checkPeers closes the task's connections that stalled (see the top of this file) and
// dials their peers again (see redial).
func (t *Task) checkPeers(now time.Time) {
	if t.tor == nil || !t.hasInfo() {
		return
	}
	w := t.e.peers
	conns := t.tor.PeerConns()
	connected := make(map[string]string, len(conns)) // dial address → network
	for _, pc := range conns {
		connected[w.dialAddr(pc)] = pc.Network
	}
	w.noteConns(t, conns, connected, now)
	w.mu.Lock()
	var again []torrent.PeerInfo
	for a, r := range w.redial[t] {
		switch {
		case connected[a] == "" && r.maxTries > 0 && r.tries >= r.maxTries:
			delete(w.redial[t], a)
			t.e.log.Debug("dropped peer did not come back; giving up on it", "task", t.id, "remote_addr", a, "tries", r.tries)
		case connected[a] != "" && !r.stalled:
			delete(w.redial[t], a)
		case connected[a] != "":
			delete(w.redial[t], a)
			// The stall's cost: how long the peer was without a connection to us.
			t.e.log.Info("stalled peer connected again", "task", t.id, "infohash", t.key,
				"remote_addr", a, "network", connected[a], "closed_network", r.network,
				"dur", now.Sub(r.closedAt).Round(time.Millisecond), "tries", r.tries)
		case now.Sub(r.closedAt) > redialFor && !r.stalled:
			delete(w.redial[t], a)
			t.e.log.Debug("direct peer did not accept a connection; giving up on it", "task", t.id, "remote_addr", a, "tries", r.tries)
		case now.Sub(r.closedAt) > redialFor:
			delete(w.redial[t], a)
			t.e.log.Warn("stalled peer did not accept a new connection; giving up on it", "task", t.id,
				"infohash", t.key, "remote_addr", a, "dur", now.Sub(r.closedAt).Round(time.Second), "tries", r.tries)
		case !now.Before(r.next):
			r.tries++
			r.next = now.Add(r.interval)
			r.interval = min(2*r.interval, redialMaxInterval)
			again = append(again, r.info)
		}
	}
	w.mu.Unlock()
	again = append(again, w.tcpRetryPeers(t, connected, now)...)
	if len(again) > 0 {
		t.tor.AddPeers(again)
	}
	slow := w.trickling(conns, now)
	for _, pc := range conns {
		addr, dial := addrString(pc.RemoteAddr), w.dialAddr(pc)
		utp := isUTP(pc.Network)
		if r, ok := slow[pc]; ok {
			t.e.log.Info("peer connection trickles; closing it, giving its requests to other peers and dialling it again",
				"task", t.id, "infohash", t.key, "network", pc.Network, "remote_addr", addr, "dial_addr", dial,
				"blocks_per_sec", fmt.Sprintf("%.2f", r))
			w.drop(t, pc, dial, now)
			continue
		}
		if utp && (w.utpBlocked(addr) || w.utpBlocked(dial)) && w.recent(w.tcpOK, dial) {
			// A peer whose uTP stalled came back over uTP although TCP to it works.
			t.e.log.Debug("closing a uTP connection to a peer whose uTP stalled", "task", t.id, "remote_addr", addr)
			w.drop(t, pc, dial, now)
			continue
		}
		d := w.stalledFor(&pc.Peer, now)
		if d < peerStallTimeout {
			continue
		}
		if utp {
			w.markUTPStalled(addr)
			w.markUTPStalled(dial)
		}
		t.e.log.Info("peer connection stalled; closing it, giving its requests to other peers and dialling it again",
			"task", t.id, "infohash", t.key, "network", pc.Network, "remote_addr", addr, "dial_addr", dial,
			"dur", d.Round(time.Millisecond), "prefer_tcp", utp && !w.tcpHopeless(dial))
		w.drop(t, pc, dial, now)
	}
}

// noteConns updates what the watch knows of task t's connections (see seenConn) and schedules
// the leechers whose connections ended early to be added again. connected maps the dial
// addresses of conns to their networks.
func (w *peerWatch) noteConns(t *Task, conns []*torrent.PeerConn, connected map[string]string, now time.Time) {
	// Whether a young connection's peer lacks pieces; asked outside w.mu (it takes the
	// client's lock).
	n := uint64(t.tor.NumPieces())
	w.mu.Lock()
	seen := w.seen[t]
	if seen == nil {
		seen = make(map[string]*seenConn)
		w.seen[t] = seen
	}
	young := make(map[string]bool)
	for a := range connected {
		s := seen[a]
		if s == nil {
			s = &seenConn{since: now}
			seen[a] = s
		}
		young[a] = now.Sub(s.since) <= droppedWithin
	}
	w.mu.Unlock()
	lacks := make(map[string]bool)
	for _, pc := range conns {
		if a := w.dialAddr(pc); young[a] && pc.PeerPieces().GetCardinality() < n {
			lacks[a] = true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for a, s := range seen {
		if connected[a] != "" {
			if young[a] {
				s.leecher = lacks[a]
			}
			continue
		}
		delete(seen, a)
		if _, ok := w.redial[t][a]; ok || !s.leecher || now.Sub(s.since) > droppedWithin+maintainInterval {
			continue
		}
		if w.redial[t] == nil {
			w.redial[t] = make(map[string]*redial)
		}
		t.e.log.Debug("leecher closed its connection early; dialling it again", "task", t.id, "remote_addr", a,
			"dur", now.Sub(s.since).Round(time.Second))
		w.redial[t][a] = &redial{
			info:     torrent.PeerInfo{Addr: torrent.StringAddr(a), Source: torrent.PeerSourceDirect},
			maxTries: droppedRedials,
			closedAt: now,
			next:     now.Add(redialFirst),
			interval: redialFirst,
		}
	}
}

// drop closes pc and schedules its peer, listening at dial, to be dialled again.
func (w *peerWatch) drop(t *Task, pc *torrent.PeerConn, dial string, now time.Time) {
	pc.Close()
	w.closed(&pc.Peer)
	if dial == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.redial[t] == nil {
		w.redial[t] = make(map[string]*redial)
	}
	w.redial[t][dial] = &redial{
		info:     torrent.PeerInfo{Addr: torrent.StringAddr(dial), Source: torrent.PeerSourceDirect, Trusted: true},
		stalled:  true,
		network:  pc.Network,
		closedAt: now,
		next:     now.Add(redialFirst),
		interval: redialFirst,
	}
}

// direct schedules peers given to task t directly (see redial) to be added again until a
// connection to each exists.
func (w *peerWatch) direct(t *Task, peers []torrent.PeerInfo, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.redial[t] == nil {
		w.redial[t] = make(map[string]*redial)
	}
	for _, p := range peers {
		a := p.Addr.String()
		if _, ok := w.redial[t][a]; ok {
			continue
		}
		w.redial[t][a] = &redial{info: p, closedAt: now, next: now.Add(redialFirst), interval: redialFirst}
	}
}

// dialAddr returns the address to dial pc's peer at: its remote address with the listen
// port from its extended handshake, when it sent one (an incoming connection's remote port
// is not where the peer listens).
func (w *peerWatch) dialAddr(pc *torrent.PeerConn) string {
	addr := addrString(pc.RemoteAddr)
	w.mu.Lock()
	port := 0
	if s := w.conns[&pc.Peer]; s != nil {
		port = s.listenPort
	}
	w.mu.Unlock()
	ap, err := netip.ParseAddrPort(addr)
	if port <= 0 || port > 65535 || err != nil {
		return addr
	}
	return netip.AddrPortFrom(ap.Addr(), uint16(port)).String()
}

// forget drops what the watch keeps for a removed task.
func (w *peerWatch) forget(t *Task) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.redial, t)
	delete(w.seen, t)
}

func isUTP(network string) bool {
	return strings.HasPrefix(network, "udp") || strings.HasPrefix(network, "utp")
}

func addrString(a torrent.PeerRemoteAddr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
