package daemon

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestE2EWatchDiskFull fills the download disk under a playing page and seeks past what was
// downloaded: the page must say the disk is full, and once space is freed play on from
// there by itself (the engine retries the task on its own).
func TestE2EWatchDiskFull(t *testing.T) {
	chromium := e2eWatchStart(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	film := e2eMakeMP4(t, t.TempDir(), 120) // about 10.5 MB
	cfg := testConfig(t, t.TempDir())
	if err := os.MkdirAll(cfg.Torrent.DownloadDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", cfg.Torrent.DownloadDir, "tmpfs", 0, "size=12m"); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("mount tmpfs refused (%v): run as root with CAP_SYS_ADMIN", err)
		}
		t.Fatal(err)
	}
	// Registered before the daemon's stop, so it runs after it; lazy, as the engine's
	// files may stay mapped until the process exits.
	t.Cleanup(func() {
		if err := syscall.Unmount(cfg.Torrent.DownloadDir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	filler, _ := enginetest.WriteRandomFile(t, cfg.Torrent.DownloadDir, "filler", 6<<20, 1)
	r, add, logs := e2eWatchTaskAt(t, cfg, film, 400<<10)
	p := openChromium(t, chromium, e2eWatchURL(r, add))
	const slow = 3 * time.Minute
	waitPage(t, p, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
	// Once the disk is full, seek to a place whose bytes could not be stored (the file is
	// about constant bitrate: a byte offset gives the time).
	task, err := r.d.eng.Task(add.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	enginetest.WaitFor(t, slow, "the task to stop on the full disk", func() bool { return task.Held() != nil })
	file := task.Files()[task.SelectedFile()]
	to := -1
	for off := file.Length / 4; off < file.Length*9/10; off += file.Length / 100 {
		if errors.Is(task.Unavailable(file.Index, off), engine.ErrDiskFull) {
			to = int(float64(off)/float64(file.Length)*120) + 2
			break
		}
	}
	if to < 0 {
		t.Fatal("every byte of the file's middle fitted on the disk")
	}
	p.eval(seekJS(float64(to)), 30*time.Second, nil)
	waitPage(t, p, `document.body.dataset.wait === 'diskFull' && /disk is full/.test(document.getElementById('status').textContent)`, slow,
		"the page to say the disk is full")
	var st pageState
	p.eval(pageStateJS, 30*time.Second, &st)
	t.Logf("the page says: %+v", st)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	waitPage(t, p, fmt.Sprintf(`document.getElementById('video').currentTime > %d + 1.5 && document.getElementById('status').textContent === ''`, to),
		slow, "playback to go on from the seek once space is freed")
	p.eval(pageStateJS, 30*time.Second, &st)
	t.Logf("space freed; %v later: %+v", time.Since(freed).Round(time.Millisecond), st)
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}
