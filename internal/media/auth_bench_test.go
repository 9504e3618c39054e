package media

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkUnauthorized measures the standard-404 path of /stream for an
// unknown task and for a known task with a wrong token, with
// require_stream_token off and on. Each iteration serves one request of
// each kind, alternating, so machine noise hits both alike; it reports their
// mean times and the difference (unknown minus known), which should be
// within noise: the work must not tell whether a task exists. A benchmark,
// not a test: timing is never asserted.
func BenchmarkUnauthorized(b *testing.B) {
	fx := newFixture(b, fixtureOptions{movieBytes: 64 << 10})
	fx.waitFiles(b)
	h := fx.srv.Handler()
	wrong := mintToken(b)
	known := StreamURL("", fx.task.ID(), wrong, -1)
	unknown := StreamURL("", "no-such-task-000000000000", wrong, -1)
	serve := func(target string) time.Duration {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, target, nil)
		start := time.Now()
		h.ServeHTTP(w, r)
		d := time.Since(start)
		if w.Code != http.StatusNotFound {
			b.Fatalf("GET %s = %d, want 404", redact(target), w.Code)
		}
		return d
	}
	for _, require := range []bool{false, true} {
		b.Run(fmt.Sprintf("require=%v", require), func(b *testing.B) {
			fx.tokens.SetRequireToken(require)
			defer fx.tokens.SetRequireToken(false)
			var tUnknown, tKnown time.Duration
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				if n%2 == 0 {
					tUnknown += serve(unknown)
					tKnown += serve(known)
				} else {
					tKnown += serve(known)
					tUnknown += serve(unknown)
				}
				n++
			}
			u, k := float64(tUnknown.Nanoseconds())/float64(n), float64(tKnown.Nanoseconds())/float64(n)
			b.ReportMetric(u, "unknown-ns/op")
			b.ReportMetric(k, "known-wrong-ns/op")
			b.ReportMetric(u-k, "diff-ns/op")
			// Allocations are deterministic where time is noisy: equal counts
			// mean the two paths do the same allocating work.
			b.ReportMetric(testing.AllocsPerRun(200, func() { serve(unknown) }), "unknown-allocs/op")
			b.ReportMetric(testing.AllocsPerRun(200, func() { serve(known) }), "known-wrong-allocs/op")
		})
	}
}
