package engine

import "errors"

// The uTP socket's kernel receive buffer.
//
// Every uTP connection of the client shares one UDP socket, read by one goroutine. libutp
// (the cgo uTP the library uses) advertises a 1 MiB receive window per connection, but the
// kernel queues only rmem_default bytes (212992 on Debian, with a per-datagram overhead that
// roughly halves what payload fits) until that goroutine reads them. A seeder that fills the
// window in one burst (libtorrent does, on a fast link, and a race-enabled or busy receiver
// reads slowly) has the rest of its burst dropped by our kernel. uTP should recover from
// losses, but against libtorrent 2.0 it often does not: our selective ACKs cover only the 32
// packets after the hole, and the seeder then neither fast-resends nor times out for about a
// minute (see peers.go). Measured in TestRealClientUTPOnly under -race with `stress -c 2`
// (loopback, qBittorrent 4.5.2 uTP-only, 8 MiB): 211 datagrams dropped and 4 stalls of 4 s
// each in 20 range reads with the default buffer.
//
// So the engine asks the kernel for utpRecvBufferBytes on that socket. Linux doubles the
// value for its bookkeeping, so about four 1 MiB windows of payload fit. It is a limit, not an
// allocation: memory is used only while datagrams wait to be read. SO_RCVBUFFORCE gets it
// whole when the process may (root, CAP_NET_ADMIN); otherwise the kernel caps it at
// net.core.rmem_max, and the log says what was granted.
const utpRecvBufferBytes = 4 << 20

// tuneUTP raises the receive buffer of the client's uTP sockets (see above).
func (e *Engine) tuneUTP() {
	for _, l := range e.cl.Listeners() {
		a := l.Addr()
		if a == nil || !isUTP(a.Network()) {
			continue
		}
		got, err := setUDPRecvBuffer(a, utpRecvBufferBytes)
		switch {
		case errors.Is(err, errors.ErrUnsupported):
		case err != nil:
			e.log.Warn("cannot raise the uTP socket's receive buffer; uTP may stall on fast links", "err", err)
		default:
			e.utpRecvBuffer.Store(int64(got))
			lvl := e.log.Info
			if got < utpRecvBufferBytes { // Linux reports twice what it granted
				lvl = e.log.Warn
			}
			lvl("uTP socket receive buffer set", "local_addr", a.String(), "bytes", got, "wanted_bytes", utpRecvBufferBytes)
		}
	}
}
