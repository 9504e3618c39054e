package engine_test

import (
	"bytes"
	"encoding/json"
	"expvar"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

func TestEncryptionOption(t *testing.T) {
	for _, v := range []string{"", "plaintext-first", "prefer", "require"} {
		enginetest.NewEngine(t, func(o *engine.Options) { o.Encryption = v })
	}
	opts := enginetest.Options(t)
	opts.Encryption = "always"
	if _, err := engine.New(opts); err == nil || !strings.Contains(err.Error(), `"always"`) {
		t.Fatalf("engine.New with encryption %q: %v, want an error naming it", opts.Encryption, err)
	}
}

// handshakeFlags returns the torrent library's count of completed handshakes by connection
// flags (its expvar map): "E" marks an RC4 connection, "e" an encrypted handshake only.
func handshakeFlags(t *testing.T) map[string]int {
	t.Helper()
	v := expvar.Get("completedHandshakeConnectionFlags")
	if v == nil {
		t.Fatal("the torrent library no longer publishes completedHandshakeConnectionFlags")
	}
	m := map[string]int{}
	if err := json.Unmarshal([]byte(v.String()), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRealClientPlaintextFirst: qBittorrent, when a connection is encrypted, encrypts every
// byte with RC4 (it allows no plaintext payload), which halved the download rate from it on
// loopback. By default the engine dials it with a plain handshake, which it accepts; with
// torrent.encryption "prefer" the connection is RC4, and with "require" too. The file reads
// back whole each time. Only the engine dials: no tracker, the seeder's address is handed.
func TestRealClientPlaintextFirst(t *testing.T) {
	if !clienttest.Isolate(t) {
		return
	}
	clienttest.Need(t, "qbittorrent-nox")
	src, path, want := realSource(t, realFileSize, 23)
	torrentPath, ih := enginetest.WriteTorrentFile(t, t.TempDir(), path, realPieceLength)
	cl := clienttest.StartQBittorrent(t, clienttest.Options{})
	cl.AddTorrent(t, torrentPath, src)
	clienttest.WaitSeeding(t, cl, ih, 2*time.Minute)
	for _, tc := range []struct {
		encryption string
		rc4        bool
	}{{"", false}, {"prefer", true}, {"require", true}} {
		before := handshakeFlags(t)
		e := enginetest.NewEngine(t, func(o *engine.Options) {
			*o = realEngineOptions(t)
			o.Encryption = tc.encryption
		})
		_, r := enginetest.OpenStream(t, e, torrentPath, cl.PeerAddr().String())
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("encryption %q: read %d bytes, %v; want the file", tc.encryption, len(got), err)
		}
		plain, _, rc4 := handshakeKinds(t, before)
		t.Logf("encryption %q: %d plain and %d RC4 connections completed their handshake", tc.encryption, plain, rc4)
		if tc.rc4 && (rc4 == 0 || plain > 0) || !tc.rc4 && (plain == 0 || rc4 > 0) {
			t.Errorf("encryption %q: %d plain and %d RC4 connections, want them all %s", tc.encryption, plain, rc4,
				map[bool]string{true: "RC4", false: "plain"}[tc.rc4])
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		e.Close()
	}
}

// libraryCounter returns one of the torrent library's expvar counters (its "torrent" map),
// 0 before the first increment.
func libraryCounter(t testing.TB, name string) int64 {
	t.Helper()
	m, ok := expvar.Get("torrent").(*expvar.Map)
	if !ok {
		t.Fatal("the torrent library no longer publishes its \"torrent\" expvar map")
	}
	v, _ := m.Get(name).(*expvar.Int)
	if v == nil {
		return 0
	}
	return v.Value()
}

// handshakeKinds counts the handshakes completed since before (a handshakeFlags result) by
// kind: plain, encrypted header with plaintext payload ("e"), and RC4 ("E").
func handshakeKinds(t *testing.T, before map[string]int) (plain, header, rc4 int) {
	t.Helper()
	for flags, n := range handshakeFlags(t) {
		n -= before[flags]
		switch {
		case strings.Contains(flags, "E"):
			rc4 += n
		case strings.Contains(flags, "e"):
			header += n
		default:
			plain += n
		}
	}
	return plain, header, rc4
}

// TestRealClientEncryptionRequired: a seeder that refuses plain connections (each client with
// encryption required, RC4 only) still serves the engine with its default setting: the plain
// handshake the engine tries first is refused, it dials again encrypted, and the file reads
// back whole. Every connection that completed a handshake is RC4, and the library counts the
// fallback. Only the engine dials: no tracker, the seeder's address is handed.
func TestRealClientEncryptionRequired(t *testing.T) {
	if !clienttest.Isolate(t) {
		return
	}
	clienttest.Need(t, "qbittorrent-nox", "transmission-daemon", "aria2c")
	src, path, want := realSource(t, realFileSize, 24)
	torrentPath, ih := enginetest.WriteTorrentFile(t, t.TempDir(), path, realPieceLength)
	for _, c := range realClients {
		t.Run(c.name, func(t *testing.T) {
			cl := c.start(t, clienttest.Options{Encryption: clienttest.EncryptionRequired})
			cl.AddTorrent(t, torrentPath, src)
			clienttest.WaitSeeding(t, cl, ih, 2*time.Minute)
			before := handshakeFlags(t)
			preferred := libraryCounter(t, "initiated conn with preferred header obfuscation")
			fallback := libraryCounter(t, "initiated conn with fallback header obfuscation")
			e := enginetest.NewEngine(t, func(o *engine.Options) { *o = realEngineOptions(t) }) // encryption: the default
			_, r := enginetest.OpenStream(t, e, torrentPath, cl.PeerAddr().String())
			took := fullRead(t, r, cl, want)
			plain, header, rc4 := handshakeKinds(t, before)
			preferred = libraryCounter(t, "initiated conn with preferred header obfuscation") - preferred
			fallback = libraryCounter(t, "initiated conn with fallback header obfuscation") - fallback
			t.Logf("%s: %d MiB in %v; handshakes: %d plain, %d encrypted header only, %d RC4; %d connections on the first (plain) try, %d on the fallback",
				cl.Name(), realFileSize>>20, took, plain, header, rc4, preferred, fallback)
			if plain > 0 || header > 0 || rc4 == 0 {
				t.Errorf("%s requires RC4: %d plain, %d header-only and %d RC4 connections, want only RC4", cl.Name(), plain, header, rc4)
			}
			if preferred > 0 || fallback == 0 {
				t.Errorf("%d connections on the first try and %d on the fallback: want all on the fallback, encrypted", preferred, fallback)
			}
		})
	}
}

// awaitPlainAnswer waits until the client answers an unencrypted handshake for the torrent:
// qBittorrent hangs up on every incoming connection for about a second after it reports a
// torrent seeding, and a refusal during that second would prove nothing.
func awaitPlainAnswer(t *testing.T, cl clienttest.Client, ih string) {
	t.Helper()
	enginetest.WaitFor(t, enginetest.EventWait, cl.Name()+" answering a plain handshake", func() bool {
		answered, _ := clienttest.PlainHandshake(t, cl.PeerAddr(), ih)
		return answered
	})
}

// TestRealClientPlainOnlyRequire: with torrent.encryption "require" the engine and a
// qBittorrent that refuses encryption never connect, either way round. First qBittorrent
// dials the engine with a plain handshake, which the engine refuses. Then the engine dials it
// encrypted and does not fall back: the attempt reaches qBittorrent (the TCP dial succeeds),
// ends without a handshake, and no connection is made. Each step awaits the library counting
// the attempt's end. qBittorrent is first shown to answer a plain handshake, so that its
// refusal is the encryption's doing; qBittorrent dials first because it does not dial a peer
// it is already connected to, so an engine that wrongly connected out would hide the
// incoming check.
func TestRealClientPlainOnlyRequire(t *testing.T) {
	if !clienttest.Isolate(t) {
		return
	}
	clienttest.Need(t, "qbittorrent-nox")
	src, path, _ := realSource(t, realFileSize, 25)
	torrentPath, ih := enginetest.WriteTorrentFile(t, t.TempDir(), path, realPieceLength)
	cl := clienttest.StartQBittorrent(t, clienttest.Options{Encryption: clienttest.EncryptionDisabled})
	cl.AddTorrent(t, torrentPath, src)
	clienttest.WaitSeeding(t, cl, ih, 2*time.Minute)
	awaitPlainAnswer(t, cl, ih)
	before := handshakeFlags(t)
	e := enginetest.NewEngine(t, func(o *engine.Options) {
		*o = realEngineOptions(t)
		o.Encryption = "require"
	})
	task, _ := enginetest.OpenStream(t, e, torrentPath) // no peers: qBittorrent dials first

	refusedIn := libraryCounter(t, "error receiving handshake")
	acceptedIn := libraryCounter(t, "received handshake for loaded torrent")
	cl.AddPeers(t, ih, e.ListenAddr().String())
	enginetest.WaitFor(t, enginetest.EventWait, "the engine to receive qBittorrent's connection", func() bool {
		return libraryCounter(t, "error receiving handshake") > refusedIn ||
			libraryCounter(t, "received handshake for loaded torrent") > acceptedIn
	})
	if n := libraryCounter(t, "received handshake for loaded torrent") - acceptedIn; n > 0 {
		t.Fatalf("qBittorrent dialling: the engine accepted %d plain handshakes", n)
	}
	if plain, header, rc4 := handshakeKinds(t, before); plain+header+rc4 > 0 {
		t.Fatalf("qBittorrent dialling: %d plain, %d header-only and %d RC4 connections completed their handshake, want none", plain, header, rc4)
	}

	attempts := libraryCounter(t, "establish outgoing connection")
	dials := libraryCounter(t, "successful dials")
	if err := task.AddPeers(cl.PeerAddr().String()); err != nil {
		t.Fatal(err)
	}
	// The library counts an attempt when it starts dialling, while the address is half-open;
	// none half-open after that means at least one attempt ended.
	enginetest.WaitFor(t, enginetest.EventWait, "the engine's first connection attempt to end", func() bool {
		return libraryCounter(t, "establish outgoing connection") > attempts && engine.HalfOpenPeers(task) == 0
	})
	if plain, header, rc4 := handshakeKinds(t, before); plain+header+rc4 > 0 {
		t.Fatalf("engine dialling: %d plain, %d header-only and %d RC4 connections completed their handshake, want none", plain, header, rc4)
	}
	if n := libraryCounter(t, "successful dials") - dials; n == 0 {
		t.Fatal("no TCP or uTP dial to qBittorrent succeeded: the attempt never reached its handshake")
	}
	if st := task.Status(); st.Peers != 0 {
		t.Fatalf("engine dialling: %d peers connected, want none", st.Peers)
	}
}

// TestEncryptionRawHandshake dials an engine seeding a torrent from the test itself, with
// each setting: every setting answers an encrypted handshake (RC4); "plaintext-first" (the
// default) and "prefer" answer a plain one too, while "require" hangs up on it without a
// handshake (what it sends first is at most its own encryption handshake's public key). The
// encrypted probe goes first: after a refused connection the library turns away every
// connection from the same /24 for a while, which would make any later probe fail.
func TestEncryptionRawHandshake(t *testing.T) {
	dir := t.TempDir()
	path, _ := enginetest.WriteRandomFile(t, dir, "movie.mp4", 1<<20, 26)
	for _, tc := range []struct {
		encryption string
		plain      bool
	}{{"", true}, {"prefer", true}, {"require", false}} {
		e := enginetest.NewEngine(t, func(o *engine.Options) {
			o.Seed = true
			o.Encryption = tc.encryption
		})
		si, err := e.Seed(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		addr := e.ListenAddr()
		if !enginetest.EncryptedHandshake(t, addr, si.InfoHash) {
			t.Fatalf("encryption %q: the engine hung up on an encrypted handshake", tc.encryption)
		}
		answered, got := clienttest.PlainHandshake(t, addr, si.InfoHash)
		if answered != tc.plain {
			t.Fatalf("encryption %q: the engine answered a plain handshake: %v, want %v", tc.encryption, answered, tc.plain)
		}
		if !answered {
			t.Logf("encryption %q: the engine hung up on a plain handshake after %d bytes of its own", tc.encryption, len(got))
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
