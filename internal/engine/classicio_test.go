package engine_test

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/torrentclaw/cli/internal/engine/classicio"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestStorageDoesNotMap checks that downloaded files are written and read
// with plain I/O: no mapping of the download dir shows in /proc/self/maps
// after a full download and read. It guards classicio's reliance on the
// package initialization order.
func TestStorageDoesNotMap(t *testing.T) {
	if !classicio.Set {
		t.Skipf("%s is set in the environment; the user's choice wins", classicio.EnvVar)
	}
	if _, err := os.Stat("/proc/self/maps"); err != nil {
		t.Skip("no /proc/self/maps on this system")
	}
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "film.mkv", 3<<20, 42)
	info := enginetest.NewSeeder(t, enginetest.SeederOptions{}).Add(t, src)
	leech := enginetest.NewEngine(t)
	_, r := enginetest.OpenStream(t, leech, info.Magnet)
	if got := enginetest.SHA256Reader(t, io.Reader(r)); got != sum {
		t.Fatalf("read sha256 = %s, want %s", got, sum)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	dl := leech.DownloadDir()
	for _, line := range strings.Split(string(maps), "\n") {
		if strings.Contains(line, dl) {
			t.Errorf("download file is memory-mapped: %s", line)
		}
	}
	if got := os.Getenv(classicio.EnvVar); got != "classic" {
		t.Errorf("%s = %q, want classic", classicio.EnvVar, got)
	}
}
