package engine

import (
	"net"
	"sync/atomic"
)

// Delayed acknowledgements.
//
// libtorrent (qBittorrent, Deluge) writes a piece message as two sends, its 13-byte header
// and then the block, with Nagle's algorithm on: the block waits until the header is
// acknowledged. Linux delays the acknowledgement of a lone small segment by 40 ms or more
// when the connection looks interactive (we answered recent data with requests), so every
// block that is not queued behind others costs about 40 ms. Deep request queues hide it;
// the first blocks after a seek do not: a capture on the qbt-1m swarm (docs/benchmarks.md)
// showed a cold 1 MiB seek spending about 45 ms before its first request went out (the one
// request queued on the connection waited for its block) and 45 ms more before the first
// block, each time for our delayed ACK of a 13-byte header.
//
// So every TCP peer connection the engine dials acknowledges at once: after each read the
// socket is switched to quick-ack mode (TCP_QUICKACK, which Linux keeps only until its own
// heuristics change it, hence after every read), which also sends an acknowledgement that
// is pending. It costs one setsockopt per read; the library reads through a 128 KiB buffer.
// Connections peers open to us get the same: the engine binds the TCP listeners itself and
// wraps what they accept (listen.go).

// quickAckConn is a TCP connection that acknowledges received data at once.
type quickAckConn struct {
	*net.TCPConn
	off bool // setting the option failed once; stop trying
}

// withQuickAck wraps c when it is a TCP connection and the platform has quick-ack mode. It
// also sets what the library sets on TCP connections it dials (linger 0), since its check
// for a *net.TCPConn does not see through the wrapper.
func withQuickAck(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || !quickAckSupported {
		return c
	}
	_ = tc.SetLinger(0)
	qc := &quickAckConn{TCPConn: tc}
	qc.quickAck()
	return qc
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 && !c.off {
		h := quickAckReadHook.Load()
		if h != nil {
			(*h)(c.TCPConn, false)
		}
		c.quickAck()
		if h != nil {
			(*h)(c.TCPConn, true)
		}
	}
	return n, err
}

// quickAckReadHook, set only by tests, sees every wrapped connection of every engine after
// each read that returned data: before (after=false) and after it is switched to quick-ack
// mode.
var quickAckReadHook atomic.Pointer[func(c *net.TCPConn, after bool)]

func (c *quickAckConn) quickAck() {
	rc, err := c.SyscallConn()
	if err != nil {
		c.off = true
		return
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setQuickAck(fd) }); err != nil || serr != nil {
		c.off = true
	}
}

// SetDeadline and friends are promoted from *net.TCPConn; these keep the wrapper a net.Conn
// whatever else TCPConn grows.
var _ net.Conn = (*quickAckConn)(nil)
