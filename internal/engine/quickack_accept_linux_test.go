package engine_test

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// acceptWatch records, through the engine's quick-ack read hook, the socket state of every
// connection accepted on one listen port: after each read that returned data, whether the
// socket was in delayed-ACK mode before the engine switched it and whether it is in
// quick-ack mode after.
//
// The library writes on another goroutine while it reads, and a segment of data sent
// within the ACK timeout of a received one puts Linux back in delayed-ACK mode (harmlessly:
// that segment carried the ACK). So a read whose socket is found out of quick-ack mode
// counts as a failure only when the socket sent no data segment (tcpi_data_segs_out) since
// just before the switch; the mode is read before the count, so a send that changed the
// mode is always seen.
type acceptWatch struct {
	port int

	mu         sync.Mutex // guards the fields below
	reads      int        // reads seen on accepted connections
	notQuick   int        // of which left the socket out of quick-ack mode with no send since
	raced      int        // of which found it out of quick-ack mode after a concurrent send
	wasDelayed int        // of which found the socket in delayed-ACK mode before the switch
	segsOut    map[*net.TCPConn]uint32
	errs       []error
}

// watchAccepted starts recording the connections accepted on port until the test ends.
// Tests that use it must not run in parallel with each other (the hook is the process's).
func watchAccepted(t *testing.T, port uint16) *acceptWatch {
	t.Helper()
	w := &acceptWatch{port: int(port), segsOut: make(map[*net.TCPConn]uint32)}
	restore := engine.SetQuickAckReadHook(func(c *net.TCPConn, after bool) {
		if la, ok := c.LocalAddr().(*net.TCPAddr); !ok || la.Port != w.port {
			return // a connection the engine dialled, or another engine's
		}
		on, segs, err := tcpAckState(c)
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case err != nil:
			w.errs = append(w.errs, err)
		case !after:
			w.segsOut[c] = segs
			if on == 0 {
				w.wasDelayed++
			}
		default:
			w.reads++
			if on != 1 {
				if segs == w.segsOut[c] {
					w.notQuick++
				} else {
					w.raced++
				}
			}
		}
	})
	t.Cleanup(restore)
	return w
}

// check fails unless connections were accepted on the port and every read on them left the
// socket in quick-ack mode.
func (w *acceptWatch) check(t *testing.T, what string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) > 0 {
		t.Fatalf("%s: reading the state of an accepted socket: %v", what, w.errs[0])
	}
	if w.reads == 0 {
		t.Fatalf("%s: no read on a quick-ack connection accepted on port %d: the connections peers open to the engine are not wrapped", what, w.port)
	}
	if w.notQuick > 0 {
		t.Errorf("%s: %d of %d reads on accepted connections left the socket out of quick-ack mode", what, w.notQuick, w.reads)
	}
	t.Logf("%s: %d reads on %d accepted connection(s) left in quick-ack mode (%d back in delayed-ACK mode at once by a concurrent send); before the switch %d found the socket in delayed-ACK mode",
		what, w.reads, len(w.segsOut), w.raced, w.wasDelayed)
}

// tcpAckState reads, in this order, TCP_QUICKACK of c's socket (1 in quick-ack mode, 0 in
// delayed-ACK mode) and the number of data segments it has sent.
func tcpAckState(c *net.TCPConn) (quickAck int, dataSegsOut uint32, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		if quickAck, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK); gerr != nil {
			return
		}
		var info *unix.TCPInfo
		if info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); gerr == nil {
			dataSegsOut = info.Data_segs_out
		}
	}); err != nil {
		return 0, 0, err
	}
	return quickAck, dataSegsOut, gerr
}

// TestQuickAckAcceptedConnection has an engine seed to a leecher (another engine, the
// anacrolix client inside it) that dials it over TCP: the download is byte-identical, and
// every read on the connection the seeder accepted leaves its socket in quick-ack mode, as
// on connections the engine dials (quickack.go, listen.go).
func TestQuickAckAcceptedConnection(t *testing.T) {
	const size, pieceLength = 4 << 20, 256 << 10
	path, sum := enginetest.WriteRandomFile(t, t.TempDir(), "clip.mp4", size, 7)
	seeder := enginetest.NewEngine(t)
	si, err := seeder.SeedWith(t.Context(), path, engine.SeedOptions{PieceLength: pieceLength})
	if err != nil {
		t.Fatal(err)
	}
	w := watchAccepted(t, seeder.ListenAddr().Port())
	torrentPath, _ := enginetest.WriteTorrentFile(t, t.TempDir(), path, pieceLength)
	le := enginetest.NewEngine(t, func(o *engine.Options) { o.WarmGrace = time.Minute })
	_, r := enginetest.OpenStream(t, le, torrentPath, si.Peer.String())
	if got := enginetest.SHA256Reader(t, io.LimitReader(r, size)); got != sum {
		t.Fatalf("leecher read sha256 %s, want %s", got, sum)
	}
	w.check(t, "engine seeding to a dialling engine")
}

// TestRealClientDialsEngine has qBittorrent (libtorrent) open the connections to the engine,
// in both directions of transfer: it seeds a file that the engine downloads, and downloads
// a file the engine seeds ([engine.Engine.Seed], what `torrentclaw seed` runs). The engine
// knows no address of qBittorrent (no tracker, no x.pe), so every connection is one
// qBittorrent dialled; uTP is off on the engine's side so that libtorrent's connection,
// which tries uTP first, lands on TCP. Each transfer is byte-identical, and every read on
// the accepted connections leaves the socket in quick-ack mode.
func TestRealClientDialsEngine(t *testing.T) {
	if !clienttest.Isolate(t) {
		return
	}
	clienttest.Need(t, "qbittorrent-nox")
	const size, pieceLength = 16 << 20, 1 << 20

	t.Run("engine_leeches", func(t *testing.T) {
		dir, path, want := realSource(t, size, 21)
		qb := clienttest.StartQBittorrent(t, clienttest.Options{})
		torrentPath, ih := enginetest.WriteTorrentFile(t, t.TempDir(), path, pieceLength)
		qb.AddTorrent(t, torrentPath, dir)
		clienttest.WaitSeeding(t, qb, ih, time.Minute)
		e := enginetest.NewEngine(t, func(o *engine.Options) { o.WarmGrace = time.Minute })
		w := watchAccepted(t, e.ListenAddr().Port())
		_, r := enginetest.OpenStream(t, e, torrentPath)
		qb.AddPeers(t, ih, e.ListenAddr().String())
		t0 := time.Now()
		got, err := io.ReadAll(io.LimitReader(r, size))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("engine read %d MiB from a dialling qBittorrent in %v", size>>20, time.Since(t0).Round(time.Millisecond))
		if string(got) != string(want) {
			t.Fatal("engine read bytes that differ from the file qBittorrent seeds")
		}
		w.check(t, "engine leeching from a dialling qBittorrent")
	})

	t.Run("engine_seeds", func(t *testing.T) {
		path, sum := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", size, 22)
		e := enginetest.NewEngine(t)
		si, err := e.SeedWith(t.Context(), path, engine.SeedOptions{PieceLength: pieceLength})
		if err != nil {
			t.Fatal(err)
		}
		w := watchAccepted(t, e.ListenAddr().Port())
		qb := clienttest.StartQBittorrent(t, clienttest.Options{})
		dir := t.TempDir()
		t0 := time.Now()
		qb.AddMagnet(t, si.Magnet, dir) // qBittorrent ignores x.pe: it is told the peer below
		enginetest.WaitFor(t, 30*time.Second, "qBittorrent to know the magnet", func() bool { return qb.Status(t, si.InfoHash).Known })
		qb.AddPeers(t, si.InfoHash, si.Peer.String())
		clienttest.WaitComplete(t, qb, si.InfoHash, 3*time.Minute)
		t.Logf("qBittorrent downloaded %d MiB from the engine, dialling it, in %v", size>>20, time.Since(t0).Round(time.Millisecond))
		if got := enginetest.SHA256File(t, filepath.Join(dir, "movie.mp4")); got != sum {
			t.Fatalf("qBittorrent wrote movie.mp4 with sha256 %s, want %s", got, sum)
		}
		w.check(t, "engine seeding to a dialling qBittorrent")
	})
}
