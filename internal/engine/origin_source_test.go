package engine_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestParseOriginSource: a remote party may name a magnet link, an infohash
// or an http(s) URL; every other sourceCase that ParseSource accepts (a
// .torrent path, a file:// URL) is refused with one fixed message.
func TestParseOriginSource(t *testing.T) {
	t.Parallel()
	for _, tc := range sourceCases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := engine.ParseOriginSource(tc.in)
			local := !tc.bad && tc.want.Kind == engine.SourceFile
			if tc.bad || local {
				if !errors.Is(err, engine.ErrBadSource) {
					t.Fatalf("ParseOriginSource(%q) = %+v, %v; want ErrBadSource", tc.in, src, err)
				}
				if want := "bad source: want a magnet link, an infohash or an http(s) url"; err.Error() != want {
					t.Errorf("ParseOriginSource(%q) error = %q, want the fixed %q", tc.in, err, want)
				}
				return
			}
			if err != nil || src.Kind != tc.want.Kind {
				t.Errorf("ParseOriginSource(%q) = %+v, %v; want kind %v", tc.in, src, err, tc.want.Kind)
			}
		})
	}
}

// TestAddRemoteRefusesLocalFiles adds sources a hostile origin might send to
// a real engine: an existing .torrent, a missing one and a FIFO, as paths and
// file:// URLs. Each is refused with the same error text before any open():
// opening the FIFO would block until a writer came, so the test finishing
// proves nothing opened it.
func TestAddRemoteRefusesLocalFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data, _ := enginetest.WriteRandomFile(t, dir, "movie.mp4", 64<<10, 1)
	existing, _ := enginetest.WriteTorrentFile(t, dir, data, 16<<10)
	missing := filepath.Join(dir, "missing.torrent")
	fifo := filepath.Join(dir, "fifo.torrent")
	if err := mkfifo(fifo); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	if _, err := os.Stat(existing); err != nil {
		t.Fatal(err)
	}
	e := enginetest.NewEngine(t)
	var first string
	for _, p := range []string{existing, missing, fifo, "/etc/passwd"} {
		for _, src := range []string{p, "file://" + p, "FILE://localhost" + p} {
			_, err := e.Add(t.Context(), engine.AddSpec{Source: src, FileIndex: -1, Remote: true})
			if !errors.Is(err, engine.ErrBadSource) {
				t.Fatalf("Add(remote %q) = %v, want ErrBadSource", src, err)
			}
			if first == "" {
				first = err.Error()
			}
			if err.Error() != first {
				t.Errorf("Add(remote %q) error %q differs from %q", src, err, first)
			}
			if strings.Contains(err.Error(), dir) || strings.Contains(err.Error(), "passwd") {
				t.Errorf("Add(remote %q) error names the path: %v", src, err)
			}
		}
	}
	if n := len(e.Tasks()); n != 0 {
		t.Errorf("engine has %d tasks, want 0", n)
	}
	// The local user may still add a .torrent file.
	if _, err := e.Add(t.Context(), engine.AddSpec{Source: existing, FileIndex: -1}); err != nil {
		t.Errorf("Add(local %s) = %v, want it added", existing, err)
	}
}

func FuzzParseOriginSource(f *testing.F) {
	for _, tc := range sourceCases {
		f.Add(tc.in)
	}
	f.Add("/etc/passwd")
	f.Add("file:///etc/passwd")
	f.Fuzz(func(t *testing.T, in string) {
		src, err := engine.ParseOriginSource(in)
		if err != nil {
			if !errors.Is(err, engine.ErrBadSource) {
				t.Fatalf("ParseOriginSource(%q) error %v does not wrap ErrBadSource", in, err)
			}
			return
		}
		if src.Kind == engine.SourceFile || src.Path != "" {
			t.Fatalf("ParseOriginSource(%q) = %+v: a local file", in, src)
		}
		if full, err := engine.ParseSource(in); err != nil || full.Kind != src.Kind {
			t.Fatalf("ParseOriginSource(%q) = %+v but ParseSource = %+v, %v", in, src, full, err)
		}
	})
}
