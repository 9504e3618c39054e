package engine

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// fakeClock is the watch's clock, moved by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time                { return c.t }
func (c *fakeClock) add(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

func TestPeerWatchStall(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	w := newPeerWatch()
	w.now = clk.now
	p := &torrent.Peer{}

	if d := w.stalledFor(p, clk.t); d != 0 {
		t.Fatalf("stalledFor(unknown peer) = %v, want 0", d)
	}
	w.read(p, pp.Unchoke, reqKey{})
	w.sent(p, 0)
	w.sent(p, 0)
	if d := w.stalledFor(p, clk.add(3*time.Second)); d != 3*time.Second {
		t.Errorf("after 3s without a block: stalledFor = %v, want 3s", d)
	}
	// A kick cancels both requests and issues them again: the wait keeps its start.
	w.deleted(p, torrent.Request{})
	w.deleted(p, torrent.Request{})
	w.sent(p, 0)
	w.sent(p, 0)
	if d := w.stalledFor(p, clk.add(2*time.Second)); d != 5*time.Second {
		t.Errorf("after a kick: stalledFor = %v, want 5s (a kick must not hide a stall)", d)
	}
	// A block restarts the wait; one request is still outstanding.
	w.read(p, pp.Piece, reqKey{})
	w.deleted(p, torrent.Request{})
	if d := w.stalledFor(p, clk.add(time.Second)); d != time.Second {
		t.Errorf("1s after a block: stalledFor = %v, want 1s", d)
	}
	// A choke suspends the wait, an unchoke restarts it.
	w.read(p, pp.Choke, reqKey{})
	if d := w.stalledFor(p, clk.add(10*time.Second)); d != 0 {
		t.Errorf("choked: stalledFor = %v, want 0", d)
	}
	w.read(p, pp.Unchoke, reqKey{})
	if d := w.stalledFor(p, clk.add(time.Second)); d != time.Second {
		t.Errorf("1s after unchoke: stalledFor = %v, want 1s", d)
	}
	// The last block with nothing else outstanding ends the wait.
	w.read(p, pp.Piece, reqKey{})
	w.deleted(p, torrent.Request{})
	if d := w.stalledFor(p, clk.add(time.Minute)); d != 0 {
		t.Errorf("nothing outstanding: stalledFor = %v, want 0", d)
	}
	w.closed(p)
	if len(w.conns) != 0 {
		t.Errorf("closed peer still tracked: %d conns", len(w.conns))
	}
}

// fakeDialer records dials and answers with conn or err.
type fakeDialer struct {
	network string
	dials   int
	err     error
}

func (d *fakeDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	d.dials++
	if d.err != nil {
		return nil, d.err
	}
	c1, c2 := net.Pipe()
	c2.Close()
	return c1, nil
}

func (d *fakeDialer) DialerNetwork() string { return d.network }

func TestPeerDialerPrefersTCP(t *testing.T) {
	const addr = "192.0.2.1:6881"
	clk := &fakeClock{t: time.Unix(1000, 0)}
	w := newPeerWatch()
	w.now = clk.now
	tcp, utp := &fakeDialer{network: "tcp4"}, &fakeDialer{network: "udp4"}
	td, ud := peerDialer{Dialer: tcp, w: w}, peerDialer{Dialer: utp, w: w}

	// Nothing known: uTP is tried (after its delay).
	c, err := ud.Dial(t.Context(), addr)
	if err != nil || utp.dials != 1 {
		t.Fatalf("uTP dial to an unknown peer = %v, %d dials; want a connection", err, utp.dials)
	}
	c.Close()
	// A completed TCP handshake: uTP is not dialled any more.
	w.noteTCP(addr, true)
	if _, err := ud.Dial(t.Context(), addr); !errors.Is(err, errPreferTCP) || utp.dials != 1 {
		t.Errorf("uTP dial after a TCP handshake = %v (%d dials), want errPreferTCP", err, utp.dials)
	}
	// TCP that connects but never completes a handshake rests, so uTP can win.
	const addr2 = "192.0.2.2:6881"
	c, err = td.Dial(t.Context(), addr2)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	clk.add(tcpHandshakeGrace + time.Second)
	if _, err := td.Dial(t.Context(), addr2); !errors.Is(err, errTCPUseless) || tcp.dials != 1 {
		t.Errorf("TCP dial to a peer that closed TCP = %v (%d dials), want errTCPUseless", err, tcp.dials)
	}
	clk.add(tcpRest)
	if c, err := td.Dial(t.Context(), addr2); err != nil {
		t.Errorf("TCP dial after the rest = %v, want a connection", err)
	} else {
		c.Close()
	}
	// A cancelled uTP dial returns at once.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := ud.Dial(ctx, "192.0.2.3:6881"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled uTP dial = %v, want context.Canceled", err)
	}
}

// TestPeerWatchTCPHopeless: a peer whose TCP failed or accepted without a handshake gets its
// uTP dial without the stalled peer's extra wait; one whose TCP worked does not.
func TestPeerWatchTCPHopeless(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	w := newPeerWatch()
	w.now = clk.now
	const unknown, refused, useless, works = "192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1", "192.0.2.4:1"
	w.noteTCP(refused, false)
	w.tcpConnected(useless)
	w.tcpConnected(works)
	w.noteTCP(works, true)
	clk.add(tcpHandshakeGrace + time.Second)
	for _, tc := range []struct {
		addr string
		want bool
	}{{unknown, false}, {refused, true}, {useless, true}, {works, false}} {
		if got := w.tcpHopeless(tc.addr); got != tc.want {
			t.Errorf("tcpHopeless(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	// TCP that works later makes the peer hopeful again.
	w.noteTCP(refused, true)
	if w.tcpHopeless(refused) {
		t.Errorf("tcpHopeless(%s) after a TCP handshake = true, want false", refused)
	}
}

// TestPeerWatchTCPRetry: a TCP connection that completes no handshake within
// tcpHandshakeGrace makes each task without a connection to that peer add it again, once,
// so that the next dial (which skips TCP) can reach it over uTP.
func TestPeerWatchTCPRetry(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	w := newPeerWatch()
	w.now = clk.now
	const utpOnly, healthy = "192.0.2.1:6881", "192.0.2.2:6881"
	t1, t2 := &Task{}, &Task{}
	w.tcpConnected(utpOnly)
	w.tcpConnected(healthy)
	w.noteTCP(healthy, true)
	if got := w.tcpRetryPeers(t1, nil, clk.t); len(got) != 0 {
		t.Errorf("tcpRetryPeers right after the dial = %v, want none (the handshake has time)", got)
	}
	now := clk.add(tcpHandshakeGrace + time.Second)
	if got := w.tcpRetryPeers(t1, nil, now); len(got) != 1 || got[0].Addr.String() != utpOnly {
		t.Errorf("tcpRetryPeers(t1) = %v, want [%s] (no handshake; the healthy peer completed one)", got, utpOnly)
	}
	if got := w.tcpRetryPeers(t1, nil, now); len(got) != 0 {
		t.Errorf("tcpRetryPeers(t1) again = %v, want none (once per task)", got)
	}
	if got := w.tcpRetryPeers(t2, map[string]string{utpOnly: "udp4"}, now); len(got) != 0 {
		t.Errorf("tcpRetryPeers(t2 connected to it) = %v, want none", got)
	}
	w.tcpRetryPeers(t1, nil, clk.add(tcpRetryFor))
	if len(w.tcpRetry) != 0 {
		t.Errorf("after tcpRetryFor: %d entries kept, want 0", len(w.tcpRetry))
	}
}

// TestPeerWatchTCPRefusedAfterWorking: a peer whose TCP completed a handshake and then
// refuses a new connection (libtorrent's one connection per IP while it holds the old one)
// keeps being dialled over TCP; only a peer whose TCP never worked rests it (tcpUseless).
func TestPeerWatchTCPRefusedAfterWorking(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	w := newPeerWatch()
	w.now = clk.now
	const worked, never = "192.0.2.1:6881", "192.0.2.2:6881"
	w.tcpConnected(worked)
	w.noteTCP(worked, true)
	clk.add(time.Minute)
	// The link was cut and the engine closed the connection; the new ones get no handshake.
	w.tcpConnected(worked)
	w.tcpConnected(never)
	clk.add(tcpHandshakeGrace + time.Second)
	if w.tcpUseless(worked) {
		t.Errorf("tcpUseless(%s) = true after a refused connection, want false: its TCP worked a minute ago", worked)
	}
	if !w.tcpUseless(never) {
		t.Errorf("tcpUseless(%s) = false, want true: its TCP never completed a handshake", never)
	}
	clk.add(peerMemory)
	w.tcpConnected(worked)
	clk.add(tcpHandshakeGrace + time.Second)
	if !w.tcpUseless(worked) {
		t.Errorf("tcpUseless(%s) = false, want true once its last working TCP is older than peerMemory", worked)
	}
}

// TestPeerWatchTrickling: a connection that owes many blocks and delivers one every second
// or so, while another delivers a hundred a second, trickles once it has been watched for
// trickleWindow; the fast one does not, nor a slow one when no other is faster.
func TestPeerWatchTrickling(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	w := newPeerWatch()
	w.now = clk.now
	fast, slow := &torrent.PeerConn{}, &torrent.PeerConn{}
	for _, pc := range []*torrent.PeerConn{fast, slow} {
		w.read(&pc.Peer, pp.Unchoke, reqKey{})
		for range 64 {
			w.sent(&pc.Peer, 0)
		}
	}
	conns := []*torrent.PeerConn{fast, slow}
	var got map[*torrent.PeerConn]float64
	for i := range 10 {
		got = w.trickling(conns, clk.t)
		if i < 4 && len(got) != 0 {
			t.Fatalf("after %d s: trickling = %v, want none before trickleWindow", i, got)
		}
		for range 100 { // the fast peer answers a request and gets another
			w.read(&fast.Peer, pp.Piece, reqKey{})
			w.deleted(&fast.Peer, torrent.Request{})
			w.sent(&fast.Peer, 0)
		}
		if i%2 == 0 { // the slow one, a block every 2 s
			w.read(&slow.Peer, pp.Piece, reqKey{})
			w.deleted(&slow.Peer, torrent.Request{})
			w.sent(&slow.Peer, 0)
		}
		clk.add(time.Second)
	}
	if _, ok := got[slow]; !ok || len(got) != 1 {
		t.Fatalf("trickling after 10 s = %v, want only the slow connection", got)
	}
	if r := got[slow]; r < 0.4 || r > 0.6 {
		t.Errorf("slow connection's rate = %.2f blocks/s, want about 0.5", r)
	}
	// Alone, the slow connection is all we have: it is not replaced.
	w2 := newPeerWatch()
	w2.now = clk.now
	w2.read(&slow.Peer, pp.Unchoke, reqKey{})
	for range 64 {
		w2.sent(&slow.Peer, 0)
	}
	for range 10 {
		got = w2.trickling([]*torrent.PeerConn{slow}, clk.t)
		clk.add(time.Second)
	}
	if len(got) != 0 {
		t.Errorf("a lone slow connection trickles: %v, want none", got)
	}
}

// TestQueuedAhead: a seek kicks (kick.go) only when some connection has kickMinQueue or more
// requests outstanding and no connection has asked for any of the pieces the reader waits for.
func TestQueuedAhead(t *testing.T) {
	w := newPeerWatch()
	a, b := &torrent.PeerConn{}, &torrent.PeerConn{}
	conns := []*torrent.PeerConn{a, b}
	for range kickMinQueue + 4 {
		w.sent(&a.Peer, 3)
	}
	for range 5 {
		w.sent(&b.Peer, 7)
	}
	for _, c := range []struct {
		pieces []int
		want   bool
	}{
		{[]int{9}, true},     // a's queue is deep and nobody asked for 9
		{[]int{9, 10}, true}, // two pieces under one read
		{[]int{3}, false},    // a asked for 3 already
		{[]int{7}, false},    // b asked for 7 already
		{[]int{10, 7}, true}, // b asked for 7, nobody for 10, and a's queue is for other pieces
		{[]int{3, 9}, false}, // nobody asked for 9, but a's queue is for 3, which is waited for too
	} {
		if got := w.queuedAhead(conns, c.pieces); got != c.want {
			t.Errorf("queuedAhead(%v) = %v, want %v", c.pieces, got, c.want)
		}
	}
	for range 5 {
		w.deleted(&a.Peer, torrent.Request{Index: 3})
	}
	if w.queuedAhead(conns, []int{9}) {
		t.Errorf("queuedAhead with %d and 5 outstanding = true, want false (under %d)", kickMinQueue-1, kickMinQueue)
	}
	if w.queuedAhead(nil, []int{9}) {
		t.Error("queuedAhead without connections = true")
	}

	// Asked for, but behind a queue: c has 20 requests for piece 1, then 4 for piece 2.
	c := &torrent.PeerConn{}
	for range 20 {
		w.sent(&c.Peer, 1)
	}
	for range 4 {
		w.sent(&c.Peer, 2)
	}
	one := []*torrent.PeerConn{c}
	if !w.queuedAhead(one, []int{2}) {
		t.Error("queuedAhead(2) behind 20 requests for 1 = false")
	}
	if w.queuedAhead(one, []int{1}) {
		t.Error("queuedAhead(1), first in the queue, = true")
	}
	if w.queuedAhead(one, []int{1, 2}) {
		t.Error("queuedAhead(1, 2), 2 behind 1 only, = true")
	}
	for range 5 { // five blocks of piece 1 arrive: 15 left ahead of 2
		w.deleted(&c.Peer, torrent.Request{Index: 1})
	}
	if w.queuedAhead(one, []int{2}) {
		t.Errorf("queuedAhead(2) behind %d requests = true, want false (under %d)", 15, kickMinQueue)
	}

	// An anacrolix peer serves what it holds in no set order: a waited piece first in its
	// queue still has every other request outstanding ahead of it.
	u := &torrent.PeerConn{}
	copy(u.PeerID[:], "-GT0003-abcdefghijkl")
	for range 4 {
		w.sent(&u.Peer, 5)
	}
	for range kickMinQueue {
		w.sent(&u.Peer, 6)
	}
	if !w.queuedAhead([]*torrent.PeerConn{u}, []int{5}) {
		t.Errorf("queuedAhead(5) first in an unordered peer's queue of %d others = false", kickMinQueue)
	}
	if w.queuedAhead([]*torrent.PeerConn{u}, []int{5, 6}) {
		t.Error("queuedAhead(5, 6) on an unordered peer holding only those = true")
	}

	// While a kick's cancels are unanswered, nothing kicks again.
	d := &torrent.PeerConn{}
	d.PeerExtensionBytes.SetBit(pp.ExtensionBitFast, true)
	for range 40 {
		w.sent(&d.Peer, 1)
	}
	w.setKicking([]*torrent.PeerConn{d}, true)
	w.deleted(&d.Peer, torrent.Request{Index: 1})
	w.setKicking([]*torrent.PeerConn{d}, false)
	for range 30 {
		w.sent(&d.Peer, 4)
	}
	if w.queuedAhead([]*torrent.PeerConn{d}, []int{5}) {
		t.Error("queuedAhead(5) with a kick's cancel unanswered = true")
	}
	w.read(&d.Peer, pp.Reject, reqKey{1, 0})
	if !w.queuedAhead([]*torrent.PeerConn{d}, []int{5}) {
		t.Error("queuedAhead(5) behind 69 requests once the kick's cancel is answered = false")
	}
}

// TestCeilingBesideKickCancels: a connection under a request ceiling keeps room for it beside
// the cancels of a kick its peer has not answered yet (the library counts those against its
// window), and the room goes as the answers come.
func TestCeilingBesideKickCancels(t *testing.T) {
	w := newPeerWatch()
	pc := &torrent.PeerConn{}
	pc.PeerExtensionBytes.SetBit(pp.ExtensionBitFast, true)
	p := &pc.Peer
	const ceiling, n = 80, 30
	w.sent(p, 0)
	w.conns[p].ceiling = ceiling
	for range n - 1 {
		if got, _ := w.sent(p, 0); got != ceiling {
			t.Fatalf("ceiling before a kick = %d, want %d", got, ceiling)
		}
	}
	w.setKicking([]*torrent.PeerConn{pc}, true)
	for i := range n {
		w.deleted(p, torrent.Request{Index: 0, ChunkSpec: torrent.ChunkSpec{Begin: pp.Integer(i * 16384), Length: 16384}})
	}
	w.setKicking([]*torrent.PeerConn{pc}, false)
	if got, _ := w.sent(p, 5); got != ceiling+n {
		t.Fatalf("ceiling with %d cancels unanswered = %d, want %d", n, got, ceiling+n)
	}
	w.read(p, pp.Reject, reqKey{0, 0})
	w.read(p, pp.Piece, reqKey{0, 16384})
	if got, _ := w.sent(p, 5); got != ceiling+n-2 {
		t.Fatalf("ceiling with %d cancels unanswered = %d, want %d", n-2, got, ceiling+n-2)
	}
	// One request went out before the peer sent a block or a reject, the other after.
	if got := w.conns[p].behindKickMax; got != 1 {
		t.Fatalf("requests counted behind the kick's cancels = %d, want 1", got)
	}
	// A second kick before the first one's cancels are answered: the window must make room
	// beside all of them (deleted's count), and the ceiling too.
	w.setKicking([]*torrent.PeerConn{pc}, true)
	if got := w.deleted(p, torrent.Request{Index: 5}); got != n-1 {
		t.Fatalf("cancels unanswered after a second kick = %d, want %d", got, n-1)
	}
	w.deleted(p, torrent.Request{Index: 5, ChunkSpec: torrent.ChunkSpec{Begin: 16384, Length: 16384}})
	w.setKicking([]*torrent.PeerConn{pc}, false)
	if got, _ := w.sent(p, 6); got != ceiling+n {
		t.Fatalf("ceiling after a second kick = %d, want %d", got, ceiling+n)
	}
}

// TestPeerWatchStallAfterKick: a kick (kick.go) leaves nothing outstanding while a peer with
// the fast extension still owes an answer to every cancel. Blocks already on their way must
// not end the wait then, or a link that died would never be seen stalled; once every cancel
// is answered the peer owes nothing. A peer without the fast extension answers no cancel, so
// it owes nothing once its requests are cancelled.
func TestPeerWatchStallAfterKick(t *testing.T) {
	for _, fast := range []bool{true, false} {
		clk := &fakeClock{t: time.Unix(1000, 0)}
		w := newPeerWatch()
		w.now = clk.now
		pc := &torrent.PeerConn{}
		pc.PeerExtensionBytes.SetBit(pp.ExtensionBitFast, fast)
		p := &pc.Peer
		w.read(p, pp.Unchoke, reqKey{})
		const n = 20
		key := func(i int) reqKey { return reqKey{uint32(i % 2), uint32(i / 2 * 16384)} }
		for i := range n {
			w.sent(p, i%2)
		}
		w.setKicking([]*torrent.PeerConn{pc}, true)
		for i := range n {
			k := key(i)
			want := 0 // a peer that answers no cancel leaves the library nothing to wait for
			if fast {
				want = i + 1
			}
			if got := w.deleted(p, torrent.Request{Index: pp.Integer(k.index), ChunkSpec: torrent.ChunkSpec{Begin: pp.Integer(k.begin), Length: 16384}}); got != want {
				t.Fatalf("fast=%v: deleted during the kick = %d, want %d", fast, got, want)
			}
		}
		w.setKicking([]*torrent.PeerConn{pc}, false)
		if got := w.deleted(p, torrent.Request{}); got != 0 {
			t.Fatalf("fast=%v: deleted after the kick = %d, want 0", fast, got)
		}
		// Three blocks that were on their way arrive, then the link dies.
		for i := range 3 {
			w.read(p, pp.Piece, key(i))
		}
		clk.add(5 * time.Second)
		d := w.stalledFor(p, clk.t)
		if fast && d < 5*time.Second {
			t.Fatalf("fast peer owing %d cancel answers: stalledFor = %v after 5 s of silence, want 5s", n-3, d)
		}
		if !fast && d != 0 {
			t.Fatalf("peer without the fast extension: stalledFor = %v after its requests were cancelled, want 0", d)
		}
		if !fast {
			continue
		}
		// The peer answers the other cancels: it owes nothing then.
		for i := 3; i < n; i++ {
			w.read(p, pp.Reject, key(i))
		}
		clk.add(10 * time.Second)
		if d := w.stalledFor(p, clk.t); d != 0 {
			t.Fatalf("every cancel answered: stalledFor = %v, want 0", d)
		}
	}
}

// TestServesUnordered: peers of the anacrolix library are known by its peer ID prefix, or,
// when an application set its own, by the library's name in their extended handshake.
func TestServesUnordered(t *testing.T) {
	for _, c := range []struct {
		id, v string
		want  bool
	}{
		{"-GT0003-abcdefghijkl", "", true},
		{"-XY0100-abcdefghijkl", "github.com/example/app v1.2.0 (anacrolix/torrent v1.59.1)", true},
		{"-XY0100-abcdefghijkl", "", false},
		{"-qB4520-abcdefghijkl", "qBittorrent/4.5.2", false},
		{"-TR3000-abcdefghijkl", "Transmission 3.00", false},
		{"A2-1-36-0-abcdefghij", "aria2/1.36.0", false},
	} {
		pc := &torrent.PeerConn{}
		copy(pc.PeerID[:], c.id)
		if c.v != "" {
			pc.PeerClientName.Store(c.v)
		}
		if got := servesUnordered(pc); got != c.want {
			t.Errorf("servesUnordered(%q, v=%q) = %v, want %v", c.id, c.v, got, c.want)
		}
	}
}

// TestAnswersCancels: peers with the fast extension answer cancels, except Transmission
// before 4.0 (as the library expects too).
func TestAnswersCancels(t *testing.T) {
	for _, c := range []struct {
		id   string
		fast bool
		want bool
	}{
		{"-qB4520-abcdefghijkl", true, true},
		{"-qB4520-abcdefghijkl", false, false},
		{"-TR3000-abcdefghijkl", true, false},
		{"-TR4000-abcdefghijkl", true, true},
		{"A2-1-36-0-abcdefghij", true, true},
		{"-TR3000-abcdefghijkl", false, false},
	} {
		pc := &torrent.PeerConn{}
		pc.PeerExtensionBytes.SetBit(pp.ExtensionBitFast, c.fast)
		copy(pc.PeerID[:], c.id)
		if got := answersCancels(pc); got != c.want {
			t.Errorf("answersCancels(%q, fast=%v) = %v, want %v", c.id, c.fast, got, c.want)
		}
	}
}
