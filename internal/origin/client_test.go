package origin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNewValidation(t *testing.T) {
	t.Parallel()
	ok := Options{BaseURL: "https://torrentclaw.com", APIKey: "k", AgentID: "a"}
	tests := []struct {
		name   string
		mutate func(*Options)
	}{
		{"empty url", func(o *Options) { o.BaseURL = "" }},
		{"relative url", func(o *Options) { o.BaseURL = "/api" }},
		{"ftp url", func(o *Options) { o.BaseURL = "ftp://x" }},
		{"credentials in url", func(o *Options) { o.BaseURL = "https://u:p@x" }},
		{"query in url", func(o *Options) { o.BaseURL = "https://x/?k=v" }},
		{"empty key", func(o *Options) { o.APIKey = "" }},
		{"key with newline", func(o *Options) { o.APIKey = "k\r\nX-Evil: 1" }},
		{"empty agent id", func(o *Options) { o.AgentID = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mutate(&o)
			_, err := New(o)
			if err == nil {
				t.Fatalf("New(%+v) = nil error, want error", o)
			}
			if strings.Contains(err.Error(), o.APIKey) && o.APIKey != "" {
				t.Errorf("New error %q contains the key", err)
			}
		})
	}
}

func TestCallURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base string
		want string
	}{
		{"https://torrentclaw.com", "https://torrentclaw.com/api/internal/agent/sync"},
		{"https://torrentclaw.com/", "https://torrentclaw.com/api/internal/agent/sync"},
		{"https://torrentclaw.com/api/internal/agent", "https://torrentclaw.com/api/internal/agent/sync"},
		{"https://torrentclaw.com/api/internal/agent/", "https://torrentclaw.com/api/internal/agent/sync"},
		{"http://127.0.0.1:3000/base", "http://127.0.0.1:3000/base/api/internal/agent/sync"},
	}
	for _, tc := range tests {
		c, err := New(Options{BaseURL: tc.base, APIKey: "k", AgentID: "a"})
		if err != nil {
			t.Fatalf("New(%q) = %v", tc.base, err)
		}
		req, err := c.newRequest(t.Context(), http.MethodPost, "sync", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := req.URL.String(); got != tc.want {
			t.Errorf("call url for base %q = %q, want %q", tc.base, got, tc.want)
		}
	}
}

func TestClientPlainHTTPWarning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base string
		warn bool
	}{
		{"http://torrentclaw.example", true},
		{"https://torrentclaw.example", false},
		{"http://127.0.0.1:3000", false},
		{"http://localhost:3000", false},
	}
	for _, tc := range tests {
		logs := newLogBuffer()
		if _, err := New(Options{BaseURL: tc.base, APIKey: "secret-key", AgentID: "a", Logger: logs.logger()}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(logs.String(), "not https"); got != tc.warn {
			t.Errorf("New(%q) warned = %v, want %v", tc.base, got, tc.warn)
		}
		if strings.Contains(logs.String(), "secret-key") {
			t.Errorf("log contains the key")
		}
	}
}

// newTestClient returns a client for handler h.
func newTestClient(t *testing.T, h http.HandlerFunc, mutate ...func(*Options)) (*Client, *logBuffer) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	logs := newLogBuffer()
	o := Options{BaseURL: srv.URL, APIKey: testAPIKey, AgentID: testAgentID, Name: "n", Version: testVersion, Logger: logs.logger()}
	for _, m := range mutate {
		m(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c, logs
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		code    int
		body    string
		revoked bool
		msg     string // substring of the error
		details string
		notIn   []string
	}{
		{name: "401", code: 401, body: `{"error":"invalid key"}`, revoked: true, msg: "api key rejected, revoked or invalid (http 401: invalid key)"},
		{name: "403", code: 403, body: `{"error":"forbidden"}`, revoked: true, msg: "http 403"},
		{name: "410", code: 410, body: ``, revoked: true, msg: "(http 410)"},
		{name: "500 with details", code: 500, body: `{"error":"boom","details":{"trace":"x"}}`, msg: "unexpected answer (http 500: boom)", details: `{"trace":"x"}`},
		{name: "html error page", code: 502, body: `<html><body>Bad gateway</body></html>`, msg: "(http 502)"},
		{name: "key echoed", code: 400, body: `{"error":"bad key ` + testAPIKey + `"}`, msg: "bad key REDACTED", notIn: []string{testAPIKey}},
		{name: "token echoed", code: 400, body: `{"error":"bad token ` + tok("e") + ` here"}`, msg: "bad token REDACTED here", notIn: []string{tok("e")}},
		{name: "control chars", code: 400, body: `{"error":"a\nb\u0000c"}`, msg: "a b c"},
		{name: "long message", code: 400, body: `{"error":"` + strings.Repeat("word ", 200) + `"}`, msg: "word word"},
		{name: "error not a string", code: 500, body: `{"error":{"nested":true}}`, msg: "(http 500)"},
		{name: "huge error body", code: 500, body: `{"error":"` + strings.Repeat("x", 2<<20) + `"}`, msg: "(http 500)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.code)
				io.WriteString(w, tc.body)
			})
			_, err := c.Sync(t.Context(), SyncRequest{})
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("Sync() = %v, want *StatusError", err)
			}
			if se.StatusCode != tc.code || se.Call != "sync" {
				t.Errorf("StatusError = %+v", se)
			}
			if errors.Is(err, ErrRevoked) != tc.revoked {
				t.Errorf("errors.Is(%v, ErrRevoked) = %v, want %v", err, !tc.revoked, tc.revoked)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Sync() error = %q, want it to contain %q", err, tc.msg)
			}
			if len(se.Message) > maxErrorMessageBytes {
				t.Errorf("message length = %d, want <= %d", len(se.Message), maxErrorMessageBytes)
			}
			if string(se.Details) != tc.details {
				t.Errorf("Details = %s, want %s", se.Details, tc.details)
			}
			for _, s := range append(tc.notIn, testAPIKey) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error contains a secret: %q", err)
				}
			}
		})
	}
}

func TestClientBodyCap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		size int
		fail bool
	}{
		{"at cap", MaxBodyBytes, false},
		{"over cap", MaxBodyBytes + 1, true},
		{"far over cap", 8 * MaxBodyBytes, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				pad := tc.size - len(`{"p":""}`)
				io.WriteString(w, `{"p":"`+strings.Repeat("x", pad)+`"}`)
			})
			_, err := c.Sync(t.Context(), SyncRequest{})
			if got := errors.Is(err, ErrBodyTooLarge); got != tc.fail {
				t.Errorf("Sync() = %v, want ErrBodyTooLarge %v", err, tc.fail)
			}
			if !tc.fail && err != nil {
				t.Errorf("Sync() = %v", err)
			}
		})
	}
}

func TestClientTimeout(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices the client leaving only after the body
		<-r.Context().Done()
	}, func(o *Options) { o.Timeout = 50 * time.Millisecond })
	start := time.Now()
	_, err := c.Register(t.Context(), RegisterRequest{})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Register() = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Register() took %v", d)
	}
	if strings.Contains(err.Error(), "http://") {
		t.Errorf("error carries the url: %v", err)
	}
}

func TestClientNoRedirect(t *testing.T) {
	t.Parallel()
	var hits int
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		hits++
		http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
	})
	_, err := c.Sync(t.Context(), SyncRequest{})
	if !isStatus(err, http.StatusFound) || hits != 1 {
		t.Errorf("Sync() on a redirect = %v after %d hits, want a 302 StatusError after 1", err, hits)
	}
}

func TestClientRegister(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		fail bool
	}{
		{"success", `{"success":true,"user":{"name":"u"},"features":{"torrent":true}}`, false},
		{"success omitted", `{}`, false},
		{"empty body", ``, false},
		{"success false", `{"success":false}`, true},
		{"malformed", `{"success":"yes"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.body) })
			r, err := c.Register(t.Context(), RegisterRequest{StreamPort: 1})
			if (err != nil) != tc.fail {
				t.Errorf("Register() = %+v, %v; want failure %v", r, err, tc.fail)
			}
		})
	}
}

func TestClientSessionCalls(t *testing.T) {
	t.Parallel()
	type got struct {
		path string
		body string
	}
	calls := make(chan got, 10)
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- got{r.URL.Path, string(b)}
		io.WriteString(w, `{"success":true}`)
	})
	if err := c.SessionReady(t.Context(), "sess-1"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 1000)
	if err := c.SessionError(t.Context(), "sess-2", "no_ffmpeg", long); err != nil {
		t.Fatal(err)
	}
	if err := c.Deregister(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "../x", strings.Repeat("a", 129)} {
		if err := c.SessionReady(t.Context(), bad); err == nil {
			t.Errorf("SessionReady(%q) = nil, want error", bad)
		}
		if err := c.SessionError(t.Context(), bad, "c", "m"); err == nil {
			t.Errorf("SessionError(%q) = nil, want error", bad)
		}
	}
	close(calls)
	var all []got
	for g := range calls {
		all = append(all, g)
	}
	if len(all) != 3 {
		t.Fatalf("calls = %v, want 3", all)
	}
	if all[0].path != APIPath+"session-ready" || all[0].body != `{"sessionId":"sess-1"}` {
		t.Errorf("session-ready call = %+v", all[0])
	}
	var se SessionErrorRequest
	if err := json.Unmarshal([]byte(all[1].body), &se); err != nil || all[1].path != APIPath+"session-error" ||
		se.SessionID != "sess-2" || se.Code != "no_ffmpeg" || len(se.Message) > maxMessageBytes || !strings.HasPrefix(long, se.Message) {
		t.Errorf("session-error call = %+v (%v)", all[1], err)
	}
	if all[2].path != APIPath+"deregister" || all[2].body != `{"agentId":"`+testAgentID+`"}` {
		t.Errorf("deregister call = %+v", all[2])
	}
}

func TestClientWake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    http.HandlerFunc
		want bool
		fail bool
	}{
		{"wake", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"wake":true}`) }, true, false},
		{"no wake", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"wake":false}`) }, false, false},
		{"wrong type", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"wake":"yes"}`) }, false, false},
		{"held past the timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, false, false},
		{"server error", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newTestClient(t, tc.h)
			timeout := 5 * time.Second
			if tc.name == "held past the timeout" {
				timeout = 100 * time.Millisecond
			}
			got, err := c.wake(t.Context(), timeout)
			if got != tc.want || (err != nil) != tc.fail {
				t.Errorf("wake() = %v, %v; want %v, failure %v", got, err, tc.want, tc.fail)
			}
		})
	}
}

func TestClientStatusUnreadableReplyCountsAsDelivered(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"OK", "", "[1]", "<html></html>"} {
		c, logs := newTestClient(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
		r, err := c.Status(t.Context(), []StatusUpdate{{TaskID: "t1"}})
		if err != nil || len(r.Results) != 0 || r.Watching != nil {
			t.Errorf("Status() with reply %q = %+v, %v; want empty, nil", body, r, err)
		}
		if warned := strings.Contains(logs.String(), "unreadable"); warned != (body != "") {
			t.Errorf("Status() with reply %q warned = %v", body, warned)
		}
	}
}

func TestClientStatusBody(t *testing.T) {
	t.Parallel()
	bodies := make(chan string, 1)
	c, _ := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		io.WriteString(w, `{"results":[{"cancelled":true}],"watching":true}`)
	})
	r, err := c.Status(t.Context(), []StatusUpdate{{TaskID: "t1", Status: StatusSeeding, Progress: 100, ETA: 0, FileName: "a.mkv"}})
	if err != nil {
		t.Fatal(err)
	}
	want := StatusReply{Results: []StatusResult{{TaskID: "t1", Cancelled: true}}, Watching: new(true)}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Status() = %+v, want %+v", r, want)
	}
	wantBody := `{"updates":[{"taskId":"t1","status":"seeding","progress":100,"downloadedBytes":0,"totalBytes":0,"speedBps":0,"eta":0,"fileName":"a.mkv","streamReady":false}]}`
	if got := <-bodies; got != wantBody {
		t.Errorf("status body = %s, want %s", got, wantBody)
	}
}
