package clienttest

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestEncryptionOption checks that Options.Encryption takes effect in each client, not only
// in its settings, by dialling the client as a peer of a torrent it seeds: with its default
// policy it answers both a plain and an encrypted handshake; with encryption required it
// answers an encrypted one and hangs up on a plain one without a handshake; qBittorrent with
// encryption disabled does the reverse. The kind a client must answer is tried first, and
// again until it answers: qBittorrent hangs up on every incoming connection for about a
// second after it reports the torrent seeding, and a refusal then would prove nothing.
func TestEncryptionOption(t *testing.T) {
	if !Isolate(t) {
		return
	}
	Need(t, "qbittorrent-nox", "transmission-daemon", "aria2c")
	dataDir := t.TempDir()
	torrentPath, ih := writeTestTorrent(t, dataDir, t.TempDir())
	qb := func(t testing.TB, o Options) Client { return StartQBittorrent(t, o) }
	tr := func(t testing.TB, o Options) Client { return StartTransmission(t, o) }
	a2 := func(t testing.TB, o Options) Client { return StartAria2(t, o) }
	for _, tc := range []struct {
		name         string
		start        func(testing.TB, Options) Client
		enc          Encryption
		plain, crypt bool // whether it must answer a plain and an encrypted handshake
	}{
		{"qbittorrent/default", qb, EncryptionDefault, true, true},
		{"qbittorrent/required", qb, EncryptionRequired, false, true},
		{"qbittorrent/disabled", qb, EncryptionDisabled, true, false},
		{"transmission/default", tr, EncryptionDefault, true, true},
		{"transmission/required", tr, EncryptionRequired, false, true},
		{"aria2/default", a2, EncryptionDefault, true, true},
		{"aria2/required", a2, EncryptionRequired, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := tc.start(t, Options{Encryption: tc.enc})
			cl.AddTorrent(t, torrentPath, dataDir)
			WaitSeeding(t, cl, ih, 2*time.Minute)
			plain := func() bool {
				answered, got := PlainHandshake(t, cl.PeerAddr(), ih)
				if !answered && len(got) > 0 {
					t.Logf("%s hung up on a plain handshake after %d bytes of its own", cl.Name(), len(got))
				}
				return answered
			}
			crypt := func() bool { return enginetest.EncryptedHandshake(t, cl.PeerAddr(), ih) }
			probes := []struct {
				kind   string
				probe  func() bool
				answer bool
			}{{"plain", plain, tc.plain}, {"encrypted", crypt, tc.crypt}}
			if !tc.plain {
				probes[0], probes[1] = probes[1], probes[0]
			}
			awaitAnswer(t, cl, probes[0].kind, probes[0].probe)
			if got := probes[1].probe(); got != probes[1].answer {
				t.Fatalf("%s with encryption %q answered a %s handshake: %v, want %v\n%s",
					cl.Name(), tc.enc, probes[1].kind, got, probes[1].answer, cl.LogTail())
			}
		})
	}
}

// awaitAnswer repeats probe, a handshake the client must answer, until it does.
func awaitAnswer(t *testing.T, cl Client, kind string, probe func() bool) {
	t.Helper()
	deadline := time.Now().Add(handshakeWait)
	for tries := 1; !probe(); tries++ {
		if time.Now().After(deadline) {
			t.Fatalf("%s answered none of %d %s handshakes in %v\n%s", cl.Name(), tries, kind, handshakeWait, cl.LogTail())
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s to answer a %s handshake", cl.Name(), kind)
		case <-time.After(50 * time.Millisecond): // the client is not ready yet; nothing to await
		}
	}
}

// writeTestTorrent writes a 1 MiB file of pseudo-random bytes to dataDir and a single-file
// .torrent of it (256 KiB pieces, no tracker) to torrentDir, and returns the .torrent's path
// and infohash. The package uses only the standard library, so it encodes the few bencode
// values itself.
func writeTestTorrent(t testing.TB, dataDir, torrentDir string) (path, infoHash string) {
	t.Helper()
	const name, size, pieceLen = "movie.mp4", 1 << 20, 256 << 10
	data := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{'e', 'n', 'c'})
	_, _ = rng.Read(data)
	if err := os.WriteFile(filepath.Join(dataDir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var pieces []byte
	for off := 0; off < size; off += pieceLen {
		sum := sha1.Sum(data[off:min(off+pieceLen, size)])
		pieces = append(pieces, sum[:]...)
	}
	// Dictionary keys in sorted order, as bencode requires.
	info := fmt.Sprintf("d6:lengthi%de4:name%d:%s12:piece lengthi%de6:pieces%d:%se",
		size, len(name), name, pieceLen, len(pieces), pieces)
	sum := sha1.Sum([]byte(info))
	infoHash = hex.EncodeToString(sum[:])
	path = filepath.Join(torrentDir, infoHash+".torrent")
	if err := os.WriteFile(path, []byte("d4:info"+info+"e"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, infoHash
}
