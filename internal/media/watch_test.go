package media

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/token"
)

// TestWatch: the player page and its session endpoint are authorized like
// /stream (the same 404 for every failure), carry only the token they were
// given, and have a strict CSP; the assets are public and fixed.
func TestWatch(t *testing.T) {
	fx := newFixture(t, fixtureOptions{require: true})
	fx.waitFiles(t)
	q := func(tok string, extra ...string) string {
		v := url.Values{"id": {fx.task.ID()}, "t": {tok}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v.Encode()
	}
	tok := string(fx.tok)

	resp, page := do(t, fx.client, http.MethodGet, fx.base+"/watch?"+q(tok))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /watch = %s", dump(t, resp, page))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", resp.Header)
	}
	body := string(page)
	for _, want := range []string{"<title>movie.mp4 · torrentclaw</title>", `src="/watch/assets/player.js"`,
		`data-session="/watch/session?file=` + itoa(fx.movie.Index) + `&amp;id=` + url.QueryEscape(fx.task.ID()) + `&amp;t=` + tok + `"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("page has an inline script or an absolute URL:\n%s", body)
	}

	// The session endpoint without HLS: the raw file only.
	resp, js := do(t, fx.client, http.MethodGet, fx.base+"/watch/session?"+q(tok, "file", itoa(fx.extra.Index)))
	var info watchInfo
	if resp.StatusCode != http.StatusOK || json.Unmarshal(js, &info) != nil {
		t.Fatalf("GET /watch/session = %s", dump(t, resp, js))
	}
	if want := "/stream?file=" + itoa(fx.extra.Index) + "&id=" + url.QueryEscape(fx.task.ID()) + "&t=" + tok; info.Raw != want || info.HLS != "" {
		t.Errorf("session info = %+v, want raw %s and no HLS", info, want)
	}

	// Two playable files (movie.mp4, extra.mkv): the file menu lists both for a task-wide
	// token, by name, and says which one the page plays.
	if len(info.Files) != 2 || info.File != fx.extra.Index || info.Files[0].Name != "extra.mkv" || info.Files[1].Name != "movie.mp4" {
		t.Errorf("session files = %d %+v, want extra.mkv and movie.mp4, playing extra.mkv", info.File, info.Files)
	}
	// A token for one file opens only that file: no menu.
	one := mintToken(t)
	if err := fx.tokens.Grant(fx.task.ID(), one, token.IssuerOrigin, token.Scope{File: fx.movie.Index}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	resp, js = do(t, fx.client, http.MethodGet, fx.base+"/watch/session?"+q(string(one), "file", itoa(fx.movie.Index)))
	info = watchInfo{}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(js, &info) != nil || info.Files != nil || info.File != fx.movie.Index {
		t.Errorf("session of a one-file token = %s, want no file menu", dump(t, resp, js))
	}

	// Every failure is the standard 404.
	wrong := strings.Repeat("ab", 32)
	for _, u := range []string{
		"/watch?" + q(wrong), "/watch/session?" + q(wrong), "/watch?id=nope&t=" + tok, "/watch?" + q(""),
		"/watch?" + q(tok) + "&t=" + tok, "/watch?" + q(tok, "s", "abc"), "/watch?" + q(tok, "file", "99"),
		"/watch/session?" + q(tok, "file", "-1"), "/watch/assets/nope.js",
		"/watch/state?" + q(wrong), "/watch/state?" + q(""), "/watch/state?id=nope&t=" + tok,
	} {
		resp, b := do(t, fx.client, http.MethodGet, fx.base+u)
		if resp.StatusCode != http.StatusNotFound || string(b) != notFoundBody {
			t.Errorf("GET %s = %s, want the standard 404", redact(u), dump(t, resp, b))
		}
	}

	for name, ct := range map[string]string{"player.js": "text/javascript", "player.css": "text/css", "hls.min.js": "text/javascript", "hls.js.LICENSE": "text/plain"} {
		resp, b := do(t, fx.client, http.MethodGet, fx.base+"/watch/assets/"+name)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) || len(b) == 0 || resp.Header.Get("ETag") == "" {
			t.Errorf("GET /watch/assets/%s = %d %q (%d bytes)", name, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
		}
	}
	if resp, b := do(t, fx.client, http.MethodGet, fx.base+"/watch/assets/hls.js.LICENSE"); !strings.Contains(string(b), "Apache License") {
		t.Errorf("hls.js license = %d %q", resp.StatusCode, b)
	}
}

// TestWatchState: /watch/state says what the task waits for (a pause here), and says
// nothing again once it is resumed; the page URL carries it with the page's own query.
func TestWatchState(t *testing.T) {
	fx := newFixture(t, fixtureOptions{require: true, uploadRate: 256 << 10})
	fx.waitFiles(t)
	q := url.Values{"id": {fx.task.ID()}, "t": {string(fx.tok)}}.Encode()
	state := func() watchState {
		t.Helper()
		resp, b := do(t, fx.client, http.MethodGet, fx.base+"/watch/state?"+q)
		var st watchState
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" || json.Unmarshal(b, &st) != nil {
			t.Fatalf("GET /watch/state = %s", dump(t, resp, b))
		}
		return st
	}
	if st := state(); st.Wait != "" || st.Peers != 1 {
		t.Errorf("state of a downloading task = %+v, want no wait and its one peer", st)
	}
	if err := fx.leech.Pause(fx.task.ID()); err != nil {
		t.Fatal(err)
	}
	if st := state(); st.Wait != "paused" {
		t.Errorf("state of a paused task = %+v, want wait paused", st)
	}
	if err := fx.leech.Resume(fx.task.ID()); err != nil {
		t.Fatal(err)
	}
	if st := state(); st.Wait != "" {
		t.Errorf("state of a resumed task = %+v, want no wait", st)
	}
	_, page := do(t, fx.client, http.MethodGet, fx.base+"/watch?"+q)
	want := `data-state="/watch/state?file=` + itoa(fx.movie.Index) + `&amp;id=` + url.QueryEscape(fx.task.ID()) + `&amp;t=` + string(fx.tok) + `"`
	if !strings.Contains(string(page), want) {
		t.Errorf("page lacks %q:\n%s", want, page)
	}
}

// TestWatchBeforeMetainfo: the page of a magnet whose metainfo is not in yet is served at
// once (it used to wait for the metainfo, a blank tab meanwhile), with a session URL that
// names no file, and /watch/state says the task waits for the metadata. A wrong token
// still gets the standard 404.
func TestWatchBeforeMetainfo(t *testing.T) {
	fx := newFixture(t, fixtureOptions{require: true})
	// Nobody has this torrent: its metainfo never comes.
	task, err := fx.leech.Add(t.Context(), engine.AddSpec{Source: "magnet:?xt=urn:btih:" + strings.Repeat("5a", 20) + "&dn=Lost+Film", FileIndex: -1, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := mintToken(t)
	if err := fx.tokens.Grant(task.ID(), tok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"id": {task.ID()}, "t": {string(tok)}}.Encode()
	resp, page := do(t, fx.client, http.MethodGet, fx.base+"/watch?"+q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /watch before the metainfo = %s", dump(t, resp, page))
	}
	for _, want := range []string{
		"<title>Lost Film · torrentclaw</title>",
		`data-session="/watch/session?id=` + url.QueryEscape(task.ID()) + `&amp;t=` + string(tok) + `"`,
		`data-state="/watch/state?id=` + url.QueryEscape(task.ID()) + `&amp;t=` + string(tok) + `"`,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	resp, b := do(t, fx.client, http.MethodGet, fx.base+"/watch/state?"+q)
	var st watchState
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &st) != nil || st.Wait != "metadata" {
		t.Errorf("GET /watch/state before the metainfo = %s, want wait metadata", dump(t, resp, b))
	}
	wrong := url.Values{"id": {task.ID()}, "t": {strings.Repeat("ab", 32)}}.Encode()
	for _, u := range []string{"/watch?" + wrong, "/watch/state?" + wrong} {
		resp, b := do(t, fx.client, http.MethodGet, fx.base+u)
		if resp.StatusCode != http.StatusNotFound || string(b) != notFoundBody {
			t.Errorf("GET %s = %s, want the standard 404", redact(u), dump(t, resp, b))
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
