package hls

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkFirstSegment measures, per mode, the time from Create to the
// first complete segment (first-ms/op, includes the probe), and the time
// from a seek (first request at 70% on a ready session) to that segment
// (seek-ms/op). Input on a local httptest server.
func BenchmarkFirstSegment(b *testing.B) {
	for _, bc := range []struct{ name, media string }{
		{"copy", mediaCopy},
		{"transcode", mediaTranscode},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := serveMedia(b, media(b, bc.media), serverOptions{})
			m := newTestManager(b, Options{SegmentSeconds: 2})
			var first, seek time.Duration
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				// Cold start: Create to the first segment.
				start := time.Now()
				s, err := m.Create(b.Context(), Spec{ID: fmt.Sprintf("bench-%d", n), InputURL: srv.inputURL()})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Segment(b.Context(), segmentName(0)); err != nil {
					b.Fatal(err)
				}
				first += time.Since(start)
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				// Seek: a ready session, first request at 70%.
				s, err = m.Create(b.Context(), Spec{ID: fmt.Sprintf("bench-seek-%d", n), InputURL: srv.inputURL()})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.WaitReady(b.Context()); err != nil {
					b.Fatal(err)
				}
				start = time.Now()
				if _, err := s.Segment(b.Context(), segmentName(s.plan.indexAt(0.7*s.plan.duration))); err != nil {
					b.Fatal(err)
				}
				seek += time.Since(start)
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(first.Milliseconds())/float64(n), "first-ms/op")
			b.ReportMetric(float64(seek.Milliseconds())/float64(n), "seek-ms/op")
		})
	}
}

// BenchmarkRenderIndex renders the index of a two-hour title.
func BenchmarkRenderIndex(b *testing.B) {
	p := gridPlan(2*3600, 4)
	b.ReportAllocs()
	for b.Loop() {
		b.SetBytes(int64(len(mediaPlaylistFor(p, testToken).render())))
	}
}
