package engine

import (
	"io"
	"net"
	"syscall"
	"testing"
)

// quickAckOn reads TCP_QUICKACK of c's socket: 1 when the kernel acknowledges at once, 0 in
// its delayed-ACK ("ping-pong") mode.
func quickAckOn(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	return sockoptInt(t, c, syscall.IPPROTO_TCP, syscall.TCP_QUICKACK)
}

// sockoptInt reads an integer socket option of c.
func sockoptInt(t testing.TB, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), level, opt)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// pingPong exchanges small messages over c (a request answered by the peer, as a peer
// connection's requests and blocks), which puts Linux's side of c in delayed-ACK mode, and
// returns after reading the last answer through r.
func pingPong(t *testing.T, c net.Conn, r io.Reader, rounds int) {
	t.Helper()
	buf := make([]byte, 13)
	for range rounds {
		if _, err := c.Write([]byte("request-17-bytes!")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuickAckAfterRead checks that a wrapped connection is in quick-ack mode after every
// read although the exchange put it in delayed-ACK mode, and that an unwrapped one is not
// (so the check can fail): the 13-byte piece header libtorrent sends alone is then
// acknowledged at once and the block behind it is not held for our delayed ACK.
func TestQuickAckAfterRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 17)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write([]byte("piece-header!")); err != nil {
						return
					}
				}
			}()
		}
	}()
	dial := func() *net.TCPConn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.TCPConn)
	}

	raw := dial()
	pingPong(t, raw, raw, 20)
	if quickAckOn(t, raw) != 0 {
		t.Skip("this kernel left delayed-ACK mode on its own; the wrapper cannot be told apart")
	}

	tc := dial()
	w := withQuickAck(tc)
	if _, ok := w.(*quickAckConn); !ok {
		t.Fatalf("withQuickAck(%T) = %T, want *quickAckConn", tc, w)
	}
	for round := range 20 {
		pingPong(t, w, w, 1)
		if got := quickAckOn(t, tc); got != 1 {
			t.Fatalf("round %d: TCP_QUICKACK = %d after a read, want 1", round, got)
		}
	}
}

// TestQuickAckOnlyTCP checks that withQuickAck leaves other connections alone.
func TestQuickAckOnlyTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := withQuickAck(a); got != a {
		t.Fatalf("withQuickAck(pipe) = %T, want the pipe itself", got)
	}
}
