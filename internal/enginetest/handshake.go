package enginetest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/mse"
	pp "github.com/anacrolix/torrent/peer_protocol"
)

// EncryptedHandshake dials addr over TCP and opens a connection for the torrent infoHash (40
// hex digits) as a peer that requires encryption does: a message stream encryption handshake
// offering RC4 only, then the BitTorrent handshake inside it. It reports whether the peer
// completed both for that torrent. A peer that hangs up during either (an end of file or a
// reset) refused; any other failure, or neither an answer nor a hang-up within EventWait,
// fails the test. It is the counterpart of clienttest.PlainHandshake.
func EncryptedHandshake(t testing.TB, addr netip.AddrPort, infoHash string) bool {
	t.Helper()
	var ih metainfo.Hash
	if err := ih.FromHexString(infoHash); err != nil {
		t.Fatalf("EncryptedHandshake: infohash %q: %v", infoHash, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), EventWait)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		t.Fatalf("EncryptedHandshake: %v", err)
	}
	defer c.Close()
	// The secret key that tells the receiver which torrent is wanted is the infohash.
	rw, method, err := mse.InitiateHandshakeContext(ctx, c, ih[:], nil, mse.CryptoMethodRC4)
	if err != nil {
		return refused(t, addr, "encryption handshake", err)
	}
	if method != mse.CryptoMethodRC4 {
		t.Fatalf("EncryptedHandshake: %s selected crypto method %v, not the RC4 offered", addr, method)
	}
	var id [20]byte
	copy(id[:], "-CT0001-encrypted-hs")
	res, err := pp.Handshake(ctx, rw, &ih, id, pp.PeerExtensionBits{})
	if err != nil {
		return refused(t, addr, "BitTorrent handshake", err)
	}
	if res.Hash != ih {
		t.Fatalf("EncryptedHandshake: %s answered for torrent %s, want %s", addr, res.Hash.HexString(), infoHash)
	}
	return true
}

// refused returns false when err is the peer hanging up, and fails the test otherwise.
func refused(t testing.TB, addr netip.AddrPort, step string, err error) bool {
	t.Helper()
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return false
	}
	t.Fatalf("EncryptedHandshake: %s: %s neither completed it nor hung up: %v", step, addr, err)
	return false
}
