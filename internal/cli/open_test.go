package cli

import (
	"errors"
	"runtime"
	"testing"
)

// Each player gets the URL it can play: VLC and mpv the playlist, IINA the
// stream, the browser the /watch page of the same task and token.
func TestOpenPlayers(t *testing.T) {
	const (
		stream   = "http://127.0.0.1:11818/stream?id=t1&t=abc"
		playlist = "http://127.0.0.1:11818/playlist.m3u?id=t1&t=abc"
	)
	look := func(name string) (string, error) {
		switch name {
		case "vlc", "mpv", "iina", "xdg-open", "open", "rundll32":
			return "/usr/bin/" + name, nil
		}
		return "", errors.New("not found")
	}
	tests := []struct{ open, wantPath, wantURL string }{
		{"vlc", "/usr/bin/vlc", playlist},
		{"mpv", "/usr/bin/mpv", playlist},
		{"iina", "/usr/bin/iina", stream},
	}
	if runtime.GOOS == "linux" {
		tests = append(tests, struct{ open, wantPath, wantURL string }{"browser", "/usr/bin/xdg-open", "http://127.0.0.1:11818/watch?id=t1&t=abc"})
	}
	for _, tc := range tests {
		t.Run(tc.open, func(t *testing.T) {
			path, err := findOpener(tc.open, look)
			if err != nil || path != tc.wantPath {
				t.Fatalf("findOpener(%q) = %q, %v; want %q", tc.open, path, err, tc.wantPath)
			}
			var got []string
			start := func(p string, args ...string) error { got = append([]string{p}, args...); return nil }
			if err := openIn(start, tc.open, path, stream, playlist); err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[1] != tc.wantURL {
				t.Errorf("openIn(%q) started %q, want %s %s", tc.open, got, tc.wantPath, tc.wantURL)
			}
		})
	}
	if _, err := findOpener("mpv", func(string) (string, error) { return "", errors.New("no") }); err == nil {
		t.Error("findOpener(mpv) without mpv = nil error")
	}
}
