package media

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/token"
)

// rawGet sends "GET target" on a new connection to addr, exactly as written
// (no client cleans the path), and returns the response.
func rawGet(t *testing.T, addr, target string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: media\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s: read response: %v", redact(target), err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestNonCanonicalPaths checks that a path ServeMux would clean with a
// redirect (copying the query, token included, into Location) gets the
// standard 404 instead, over a real socket.
func TestNonCanonicalPaths(t *testing.T) {
	tokens := token.New(token.Options{RequireToken: true})
	if err := tokens.Grant("task1", fuzzToken, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	_, _, addr := startServer(t, Options{Engine: noEngine{}, Tokens: tokens, Logger: testLogger(t)})
	q := "?id=task1&t=" + fuzzToken
	ref := rawGet(t, addr.String(), "/no/such/path")
	refBody, _ := io.ReadAll(ref.Body)
	for _, target := range []string{
		"//stream" + q, "/./stream" + q, "/a/../stream" + q, "/stream/" + q, "/stream/." + q,
		"/%2e/stream" + q, "/%2Fstream" + q, "/a/%2e%2e/stream" + q, "/stream%3F" + q,
		"//health", "/./health", "/hls//x/index.m3u8" + q, "/hls/s/./index.m3u8" + q,
		// The player page and its assets (issue 9 item 4's rule holds for them too).
		"//watch" + q, "/./watch" + q, "/watch/" + q, "/watch/assets/../watch" + q,
		"/watch/./assets/player.js", "/watch/assets//player.js", "/watch/assets/./player.js",
		"/watch/assets/../assets/player.js", "/watch/assets/%2e%2e/session" + q,
		"/watch/session/" + q, "/watch/../watch/session" + q, "//watch/session" + q,
	} {
		p, _, _ := strings.Cut(target, "?")
		t.Run(p, func(t *testing.T) {
			resp := rawGet(t, addr.String(), target)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s status = %d, want 404", p, resp.StatusCode)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("GET %s has Location %q, want none", p, redact(loc))
			}
			if string(body) != string(refBody) {
				t.Errorf("GET %s body = %q, want the standard %q", p, body, refBody)
			}
		})
	}
	// The canonical paths still answer.
	for _, p := range []string{"/health", "/watch/assets/player.js"} {
		if resp := rawGet(t, addr.String(), p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s status = %d, want 200", p, resp.StatusCode)
		}
	}
}

func TestCanonicalPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"/", true}, {"/stream", true}, {"/hls/abc/index.m3u8", true}, {"/health", true},
		{"", false}, {"stream", false}, {"//stream", false}, {"/./stream", false},
		{"/a/../stream", false}, {"/stream/", false}, {"/stream/.", false}, {"/stream/..", false},
		{"/%2e/stream", false}, {"/%2Fstream", false}, {"/a%20b", false}, {"*", false},
		{"/...", true}, {"/.hidden", true},
	} {
		if got := canonicalPath(tc.in); got != tc.want {
			t.Errorf("canonicalPath(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzCanonicalPath checks canonicalPath against a reference: a path is
// canonical exactly when it is absolute, has no percent-encoding, and
// path.Clean (what ServeMux redirects to) leaves it as it is.
func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"/", "/stream", "//stream", "/./stream", "/a/../stream", "/%2e", "/x/", "/..", "*", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		want := strings.HasPrefix(p, "/") && !strings.Contains(p, "%") && path.Clean(p) == p
		if got := canonicalPath(p); got != want {
			t.Errorf("canonicalPath(%q) = %v, want %v", p, got, want)
		}
	})
}

// TestConnectionCapPerClient opens as many idle connections as the
// per-client cap allows from 127.0.0.1, checks that one more is refused
// (closed before anything is read), that a request on an open one is still
// served, and that another client address (127.0.0.2) is served too.
func TestConnectionCapPerClient(t *testing.T) {
	const perClient = 5
	tokens := token.New(token.Options{RequireToken: true})
	_, _, addr := startServer(t, Options{Engine: noEngine{}, Tokens: tokens, Logger: testLogger(t),
		MaxConns: 100, MaxConnsPerClient: perClient})

	dial := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", addr.String())
		if err != nil {
			t.Fatalf("dial from %s: %v", local, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var open []net.Conn
	for range perClient {
		open = append(open, dial("127.0.0.1"))
	}
	// The kernel hands connections to Accept in the order they were made, so
	// this one is accepted after the others and is over the cap.
	extra := dial("127.0.0.1")
	// No deadline is needed to await the refusal: the server closes the
	// connection, which ends the read. One guards against a hang if it never does.
	_ = extra.SetReadDeadline(time.Now().Add(time.Minute))
	n, err := extra.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read on the connection over the cap = %d, %v; want it closed by the server", n, err)
	}

	get := func(c net.Conn) int {
		t.Helper()
		if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: media\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("GET /health: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(open[0]); code != http.StatusOK {
		t.Errorf("GET /health on a connection within the cap = %d, want 200", code)
	}
	if code := get(dial("127.0.0.2")); code != http.StatusOK {
		t.Errorf("GET /health from 127.0.0.2 = %d, want 200", code)
	}

	// Closing one frees its slot for the same address.
	open[1].Close()
	waitFor(t, "a freed slot to be reused", func() bool {
		c := dial("127.0.0.1")
		defer c.Close()
		if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: media\r\nConnection: close\r\n\r\n"); err != nil {
			return false
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestConnectionCapTotal checks the total cap across addresses.
func TestConnectionCapTotal(t *testing.T) {
	tokens := token.New(token.Options{RequireToken: true})
	_, _, addr := startServer(t, Options{Engine: noEngine{}, Tokens: tokens, Logger: testLogger(t),
		MaxConns: 3, MaxConnsPerClient: 3})
	for i, local := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i < 3 {
			continue
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Minute)) // guards against a hang only
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("read on the 4th connection (cap 3) = %d, %v; want it closed", n, err)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("4th connection (cap 3) stayed open")
		}
	}
}

// waitFor polls cond until it holds. The deadline only turns a hang into a
// failure; it is generous so a loaded machine never reaches it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
