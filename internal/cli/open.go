package cli

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// players are the values of stream --open.
var players = []string{"vlc", "mpv", "iina", "browser"}

// findOpener returns the program that opens a stream in the player named by
// open: the player's binary, or for "browser" the system's URL opener.
func findOpener(open string, lookPath func(string) (string, error)) (string, error) {
	var names []string
	switch open {
	case "vlc":
		return findPlayer(lookPath)
	case "mpv":
		names = []string{"mpv"}
	case "iina":
		names = []string{"iina", "/Applications/IINA.app/Contents/MacOS/iina-cli"}
	case "browser":
		switch runtime.GOOS {
		case "darwin":
			names = []string{"open"}
		case "windows":
			names = []string{"rundll32"}
		default:
			names = []string{"xdg-open"}
		}
	default:
		return "", fmt.Errorf("--open %q: want one of %s", open, strings.Join(players, ", "))
	}
	for _, n := range names {
		if p, err := lookPath(n); err == nil {
			return p, nil
		}
	}
	if open == "browser" {
		return "", fmt.Errorf("--open browser: %s not found; open the /watch URL by hand", names[0])
	}
	return "", fmt.Errorf("--open %s: %s not found on PATH; install it or open the URL in any player", open, names[0])
}

// openIn starts the player on the task: VLC and mpv get the playlist (every
// playable file), IINA the stream, the browser the /watch player page. The
// player needs the URL, token included, as an argument: other local users
// can read it in the process list while the player runs; nothing long-lived
// of ours carries it.
func openIn(start func(string, ...string) error, open, path, streamURL, playlistURL string) error {
	var args []string
	switch open {
	case "vlc", "mpv":
		args = []string{playlistURL}
	case "iina":
		args = []string{streamURL}
	case "browser":
		watch, ok := watchURL(streamURL)
		if !ok {
			return errors.New("--open browser: cannot make the /watch URL from the stream URL")
		}
		if runtime.GOOS == "windows" {
			args = []string{"url.dll,FileProtocolHandler", watch}
		} else {
			args = []string{watch}
		}
	}
	if err := start(path, args...); err != nil {
		return fmt.Errorf("open %s: %w", open, err)
	}
	return nil
}

// watchURL turns "<base>/stream?id=…&t=…" into "<base>/watch?id=…&t=…", the
// player page of the same task, file and token.
func watchURL(streamURL string) (string, bool) {
	before, after, ok := strings.Cut(streamURL, "/stream?")
	if !ok {
		return "", false
	}
	return before + "/watch?" + after, true
}
