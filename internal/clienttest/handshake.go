package clienttest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// handshakeWait bounds PlainHandshake's wait for an answer or a close. It only turns a peer
// that neither answers nor hangs up into a failure; a loaded machine never reaches it.
const handshakeWait = 2 * time.Minute

// btProtocol opens every unencrypted BitTorrent handshake: the length byte 19, then the
// protocol name.
const btProtocol = "\x13BitTorrent protocol"

// PlainHandshake dials addr over TCP and sends an unencrypted BitTorrent handshake (no
// reserved bits) for the torrent infoHash (40 hex digits), as a peer that does not encrypt
// would. It reports whether the peer answered with a handshake for that torrent. When it did
// not, it reads on until the peer closes the connection (an end of file or a reset) and
// returns what came before: a peer that refuses plain connections may send bytes of its own
// encrypted handshake first, but never a BitTorrent handshake. A peer that neither answers
// nor closes fails the test.
func PlainHandshake(t testing.TB, addr netip.AddrPort, infoHash string) (answered bool, got []byte) {
	t.Helper()
	ih, err := hex.DecodeString(infoHash)
	if err != nil || len(ih) != 20 {
		t.Fatalf("PlainHandshake: infohash %q: want 40 hex digits", infoHash)
	}
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("PlainHandshake: %v", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(handshakeWait)); err != nil {
		t.Fatal(err)
	}
	var hs bytes.Buffer
	hs.WriteString(btProtocol)
	hs.Write(make([]byte, 8)) // reserved: no extensions
	hs.Write(ih)
	hs.WriteString("-CT0001-plainhandshk") // peer id: 20 bytes
	if _, err := c.Write(hs.Bytes()); err != nil {
		t.Fatalf("PlainHandshake: send: %v", err)
	}
	var buf []byte
	b := make([]byte, 4096)
	for {
		n, err := c.Read(b)
		buf = append(buf, b[:n]...)
		if len(buf) >= 48 && string(buf[:len(btProtocol)]) == btProtocol { // through the infohash
			if !bytes.Equal(buf[28:48], ih) {
				t.Fatalf("PlainHandshake: %s answered a handshake for torrent %x, want %s", addr, buf[28:48], infoHash)
			}
			return true, nil
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			if bytes.Contains(buf, []byte(btProtocol[1:])) {
				t.Fatalf("PlainHandshake: %s sent a handshake that did not open its answer: %q", addr, buf)
			}
			return false, buf
		default:
			t.Fatalf("PlainHandshake: %s neither answered nor closed the connection: %v (%d bytes received)", addr, err, len(buf))
		}
	}
}
