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
		var plain, rc4 int
		for flags, n := range handshakeFlags(t) {
			n -= before[flags]
			if strings.Contains(flags, "E") {
				rc4 += n
			} else if !strings.Contains(flags, "e") {
				plain += n
			}
		}
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
