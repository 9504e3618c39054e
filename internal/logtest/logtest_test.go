package logtest_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/torrentclaw/cli/internal/logtest"
)

// TestBufferConcurrent: writers and readers at once (the race detector checks the
// locking), then every line written is there whole, once.
func TestBufferConcurrent(t *testing.T) {
	t.Parallel()
	const writers, lines = 8, 200
	var b logtest.Buffer
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(&b, "writer %d line %d\n", w, i)
			}
		})
	}
	wg.Go(func() {
		for range lines {
			if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") {
				t.Errorf("String() ends mid-line: %q", s[max(0, len(s)-40):])
				return
			}
		}
	})
	wg.Wait()
	got := b.String()
	if n := strings.Count(got, "\n"); n != writers*lines {
		t.Errorf("String() has %d lines, want %d", n, writers*lines)
	}
	for w := range writers {
		for i := range lines {
			if line := fmt.Sprintf("writer %d line %d\n", w, i); strings.Count(got, line) != 1 {
				t.Fatalf("String() holds %q %d times, want once", line, strings.Count(got, line))
			}
		}
	}
}

func TestBufferWrite(t *testing.T) {
	t.Parallel()
	var b logtest.Buffer
	if s := b.String(); s != "" {
		t.Errorf("zero Buffer String() = %q, want empty", s)
	}
	p := []byte("abc")
	if n, err := b.Write(p); n != 3 || err != nil {
		t.Errorf("Write(%q) = %d, %v; want 3, nil", p, n, err)
	}
	p[0] = 'x' // the buffer keeps its own copy
	if _, err := b.Write(bytes.Repeat([]byte("d"), 2)); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); s != "abcdd" {
		t.Errorf("String() = %q, want %q", s, "abcdd")
	}
}
