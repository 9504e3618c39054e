package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// validTorrent is the smallest metainfo decodeMetainfo accepts.
const validTorrent = "d4:infod6:lengthi10e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"

// code returns the origin code an error names, as origin.ErrorCode finds it.
func code(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}

func TestFetchMetainfo(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, validTorrent) })
	mux.HandleFunc("/hop/{n}", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscan(r.PathValue("n"), &n)
		if n == 0 {
			http.Redirect(w, r, "/ok", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprint("/hop/", n-1), http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "file:///etc/passwd")
		w.WriteHeader(http.StatusFound)
	})
	mux.HandleFunc("/to-ftp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "ftp://127.0.0.1/t.torrent")
		w.WriteHeader(http.StatusFound)
	})
	mux.HandleFunc("/to-magnet", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "magnet:?xt=urn:btih:c9e15763f722f23e98a29decdfae341b98d53056")
		w.WriteHeader(http.StatusFound)
	})
	mux.HandleFunc("/big-chunked", func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("x", 1<<20)
		for range 10 {
			fmt.Fprint(w, chunk)
		}
		w.(http.Flusher).Flush() // no Content-Length: the cap must catch it while reading
		fmt.Fprint(w, "x")
	})
	mux.HandleFunc("/big-declared", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(maxFetchBytes+1))
		fmt.Fprint(w, strings.Repeat("x", maxFetchBytes+1))
	})
	mux.HandleFunc("/exactly-cap", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, strings.Repeat("x", maxFetchBytes))
	})
	mux.HandleFunc("/garbage", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>hi</html>") })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// A port nobody listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/t.torrent"
	ln.Close()

	tests := []struct {
		name   string
		url    string
		want   error // nil: success
		magnet bool
	}{
		{"ok", srv.URL + "/ok", nil, false},
		{"five redirects", srv.URL + "/hop/4", nil, false},
		{"six redirects", srv.URL + "/hop/5", ErrFetch, false},
		{"redirect loop", srv.URL + "/loop", ErrFetch, false},
		{"redirect to file", srv.URL + "/to-file", ErrFetch, false},
		{"redirect to ftp", srv.URL + "/to-ftp", ErrFetch, false},
		{"redirect to magnet", srv.URL + "/to-magnet", nil, true},
		{"body over the cap, chunked", srv.URL + "/big-chunked", ErrFetch, false},
		{"body over the cap, declared", srv.URL + "/big-declared", ErrFetch, false},
		{"body at the cap is read, then refused as a torrent", srv.URL + "/exactly-cap", ErrBadTorrent, false},
		{"not a torrent", srv.URL + "/garbage", ErrBadTorrent, false},
		{"http 404", srv.URL + "/missing", ErrFetch, false},
		{"http 500", srv.URL + "/error", ErrFetch, false},
		{"connection refused", refused, ErrFetch, false},
		{"file url", "file:///etc/passwd", ErrBadSource, false},
		{"path", "/etc/passwd", ErrBadSource, false},
	}
	client := newFetchClient()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			meta, magnet, err := fetchMetainfo(ctx, client, tc.url)
			if tc.want == nil {
				if err != nil || (meta == nil) == (magnet == nil) || (magnet != nil) != tc.magnet {
					t.Fatalf("fetchMetainfo(%s) = %v, %v, %v; want success (magnet %v)", tc.name, meta != nil, magnet, err, tc.magnet)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("fetchMetainfo(%s) = %v, want %v", tc.name, err, tc.want)
			}
			if got, want := code(err), code(tc.want); got != want {
				t.Errorf("code(%v) = %q, want %q", err, got, want)
			}
			if strings.Contains(err.Error(), srv.URL) || strings.Contains(err.Error(), refused) {
				t.Errorf("error quotes the url: %v", err)
			}
		})
	}
	// The point of the codes: a refused port and an HTTP status read the same
	// to the origin.
	_, _, e1 := fetchMetainfo(t.Context(), client, refused)
	_, _, e2 := fetchMetainfo(t.Context(), client, srv.URL+"/missing")
	if code(e1) != "fetch_failed" || code(e1) != code(e2) {
		t.Errorf("codes: connection refused %q, http 404 %q; want both fetch_failed", code(e1), code(e2))
	}
}

// TestFetchHangingServerCancelled: a server that never answers is cut off by
// the caller's context.
func TestFetchHangingServerCancelled(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1) // one request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := fetchMetainfo(ctx, newFetchClient(), srv.URL+"/t.torrent")
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, ErrFetch) {
		t.Errorf("fetchMetainfo(hanging, cancelled) = %v, want ErrFetch", err)
	}
}
