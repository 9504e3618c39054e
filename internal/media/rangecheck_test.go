package media

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// firstRead is a ReadSeeker of size zero bytes that records where it is first read, and
// where reading ended.
type firstRead struct {
	size, pos, first int64
	read             bool
}

func (f *firstRead) Read(p []byte) (int, error) {
	if !f.read {
		f.read, f.first = true, f.pos
	}
	if f.pos >= f.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.size-f.pos)
	clear(p[:n])
	f.pos += n
	return int(n), nil
}

func (f *firstRead) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += f.pos
	case io.SeekEnd:
		off += f.size
	}
	if off < 0 {
		return 0, errors.New("negative")
	}
	f.pos = off
	return off, nil
}

// serveSpan is the reference: where http.ServeContent really starts and stops reading (-1,
// -1: never).
func serveSpan(rangeHdr, ifRange, etag string, size int64) (start, end int64) {
	r := httptest.NewRequest(http.MethodGet, "/stream", nil)
	if rangeHdr != "" {
		r.Header.Set("Range", rangeHdr)
	}
	if ifRange != "" {
		r.Header.Set("If-Range", ifRange)
	}
	dropMultiRange(r)
	w := httptest.NewRecorder()
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "video/mp4")
	c := &firstRead{size: size}
	http.ServeContent(w, r, "", time.Time{}, c)
	if !c.read || w.Code >= 300 {
		return -1, -1
	}
	return c.first, c.pos
}

const testETag = `"abc-0"`

var rangeCases = []struct {
	rng, ifRange string
	size         int64
}{
	{"", "", 100}, {"bytes=0-", "", 100}, {"bytes=10-", "", 100}, {"bytes=10-20", "", 100},
	{"bytes=-30", "", 100}, {"bytes=-300", "", 100}, {"bytes=-0", "", 100}, {"bytes=100-", "", 100},
	{"bytes=99-", "", 100}, {"bytes=20-10", "", 100}, {"bytes=x-", "", 100}, {"items=0-", "", 100},
	{"bytes=", "", 100}, {"bytes= 5 - 9 ", "", 100}, {"bytes=0-1,5-6", "", 100}, {"bytes=--5", "", 100},
	{"bytes=50-", testETag, 100}, {"bytes=50-", `"other"`, 100}, {"bytes=50-", "Mon, 02 Jan 2006 15:04:05 GMT", 100},
	{"bytes=0-", "", 0}, {"", "", 0},
}

func TestReadSpan(t *testing.T) {
	for _, tc := range rangeCases {
		wantStart, wantEnd := serveSpan(tc.rng, tc.ifRange, testETag, tc.size)
		r := httptest.NewRequest(http.MethodGet, "/stream", nil)
		r.Header.Set("Range", tc.rng)
		dropMultiRange(r) // as the handler does first
		if start, end := readSpan(r.Header.Get("Range"), tc.ifRange, testETag, tc.size); start != wantStart || end != wantEnd {
			t.Errorf("readSpan(%q, %q, size %d) = %d, %d, want %d, %d (what ServeContent reads)", tc.rng, tc.ifRange, tc.size, start, end, wantStart, wantEnd)
		}
	}
}

// FuzzReadSpan checks readSpan against http.ServeContent itself, the reference.
func FuzzReadSpan(f *testing.F) {
	for _, tc := range rangeCases {
		f.Add(tc.rng, tc.ifRange == testETag, tc.size)
	}
	f.Fuzz(func(t *testing.T, rng string, matching bool, size int64) {
		if size < 0 || size > 1<<40 {
			return
		}
		ifRange := ""
		if matching {
			ifRange = testETag
		}
		r := httptest.NewRequest(http.MethodGet, "/stream", nil)
		r.Header.Set("Range", rng)
		if r.Header.Get("Range") != rng {
			return // not a header value net/http would pass on
		}
		wantStart, wantEnd := serveSpan(rng, ifRange, testETag, size)
		dropMultiRange(r) // as the handler does first
		rng = r.Header.Get("Range")
		if start, end := readSpan(rng, ifRange, testETag, size); start != wantStart || end != wantEnd {
			t.Errorf("readSpan(%q, %q, size %d) = %d, %d, want %d, %d (what ServeContent reads)", rng, ifRange, size, start, end, wantStart, wantEnd)
		}
	})
}
