package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeOrigin is the torrentclaw website as far as the daemon can tell: it
// speaks the wire protocol of DESIGN.md, records every call, and hands out
// queued sync replies and status results. It is the only fake in these tests.
type fakeOrigin struct {
	srv    *httptest.Server
	apiKey string

	// mu guards everything below.
	mu        sync.Mutex
	calls     []originCall
	syncQueue []map[string]any // next sync replies, one per sync
	statusRes []map[string]any // next status results (one per update of the next batch)
	watching  bool
	fail      int // status code every call answers with when non-zero
	hang      chan struct{}
	changed   chan struct{} // closed and replaced on every call
}

type originCall struct {
	Name   string
	Auth   string
	UA     string
	Body   map[string]any
	Status int
}

func newFakeOrigin(t *testing.T, apiKey string) *fakeOrigin {
	t.Helper()
	f := &fakeOrigin{apiKey: apiKey, changed: make(chan struct{})}
	f.srv = httptest.NewServer(f)
	t.Cleanup(func() {
		f.mu.Lock()
		if f.hang != nil {
			close(f.hang)
			f.hang = nil
		}
		f.mu.Unlock()
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fakeOrigin) URL() string { return f.srv.URL }

func (f *fakeOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/api/internal/agent/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		_ = json.Unmarshal(b, &body)
	}
	f.mu.Lock()
	call := originCall{Name: name, Auth: r.Header.Get("Authorization"), UA: r.Header.Get("User-Agent"), Body: body}
	hang, fail := f.hang, f.fail
	if call.Auth != "Bearer "+f.apiKey {
		fail = http.StatusUnauthorized
	}
	call.Status = fail
	f.calls = append(f.calls, call)
	close(f.changed)
	f.changed = make(chan struct{})
	var reply any = map[string]any{"success": true}
	if fail == 0 {
		switch name {
		case "register":
			reply = map[string]any{"success": true, "user": map[string]any{"id": "u1"}, "features": map[string]any{}}
		case "sync":
			rep := map[string]any{"watching": f.watching}
			if len(f.syncQueue) > 0 {
				for k, v := range f.syncQueue[0] {
					rep[k] = v
				}
				f.syncQueue = f.syncQueue[1:]
			}
			reply = rep
		case "status":
			n := 0
			if ups, ok := body["updates"].([]any); ok {
				n = len(ups)
			}
			res := make([]any, n)
			for i := range res {
				res[i] = map[string]any{}
			}
			// Match queued results to updates by task id.
			if ups, ok := body["updates"].([]any); ok {
				var rest []map[string]any
				for _, q := range f.statusRes {
					matched := false
					for i, u := range ups {
						if um, ok := u.(map[string]any); ok && um["taskId"] == q["taskId"] {
							res[i] = q
							matched = true
							break
						}
					}
					if !matched {
						rest = append(rest, q)
					}
				}
				f.statusRes = rest
			}
			reply = map[string]any{"results": res}
		case "events":
			f.mu.Unlock()
			http.Error(w, `{"error":"not here"}`, http.StatusNotFound)
			return
		case "wake":
			f.mu.Unlock()
			// A long poll that answers "no wake" at once keeps the test
			// quick; the heartbeat does the work.
			select {
			case <-r.Context().Done():
			case <-f.changedCh():
			}
			writeJSON(w, http.StatusOK, map[string]any{"wake": false})
			return
		}
	}
	f.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	if fail != 0 {
		writeJSON(w, fail, map[string]any{"error": http.StatusText(fail)})
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

func (f *fakeOrigin) changedCh() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// queueSync makes the next sync reply carry entries.
func (f *fakeOrigin) queueSync(entries map[string]any) {
	f.mu.Lock()
	f.syncQueue = append(f.syncQueue, entries)
	f.mu.Unlock()
}

// queueStatusResult answers the next status update for taskID with res.
func (f *fakeOrigin) queueStatusResult(res map[string]any) {
	f.mu.Lock()
	f.statusRes = append(f.statusRes, res)
	f.mu.Unlock()
}

func (f *fakeOrigin) setFail(code int) {
	f.mu.Lock()
	f.fail = code
	f.mu.Unlock()
}

func (f *fakeOrigin) setHang(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on && f.hang == nil {
		f.hang = make(chan struct{})
	}
	if !on && f.hang != nil {
		close(f.hang)
		f.hang = nil
	}
}

func (f *fakeOrigin) callsNamed(name string) []originCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []originCall
	for _, c := range f.calls {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// lastTaskState returns the newest reported state of taskID, from sync tasks
// or status updates.
func (f *fakeOrigin) lastTaskState(taskID string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		c := f.calls[i]
		key := "tasks"
		if c.Name == "status" {
			key = "updates"
		} else if c.Name != "sync" {
			continue
		}
		list, _ := c.Body[key].([]any)
		for _, e := range list {
			if m, ok := e.(map[string]any); ok && m["taskId"] == taskID {
				return m
			}
		}
	}
	return nil
}
