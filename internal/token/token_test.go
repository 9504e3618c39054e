package token

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func mint(t *testing.T) Token {
	t.Helper()
	tok, err := Mint()
	if err != nil {
		t.Fatalf("Mint() error = %v", err)
	}
	return tok
}

func TestMint(t *testing.T) {
	a, b := mint(t), mint(t)
	if len(a.Reveal()) != 64 || !Valid(a.Reveal()) {
		t.Errorf("Mint() = %d chars, valid=%v; want 64 valid hex chars", len(a.Reveal()), Valid(a.Reveal()))
	}
	if a == b {
		t.Errorf("Mint() returned the same token twice")
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"empty", "", false},
		{"short", strings.Repeat("a", 31), false},
		{"min", strings.Repeat("a", 32), true},
		{"max", strings.Repeat("Z", 128), true},
		{"long", strings.Repeat("a", 129), false},
		{"urlsafe", strings.Repeat("aZ09-_.~", 4), true},
		{"space", strings.Repeat("a", 31) + " ", false},
		{"slash", strings.Repeat("a", 31) + "/", false},
		{"percent", strings.Repeat("a", 31) + "%", false},
		{"nul", strings.Repeat("a", 31) + "\x00", false},
		{"unicode", strings.Repeat("a", 30) + "é", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Valid(tc.in); got != tc.want {
				t.Errorf("Valid(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestRedaction(t *testing.T) {
	tok := mint(t)
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "token", tok)
	out := buf.String() + fmt.Sprint(tok) + fmt.Sprintf("%v %s %#v %+v", tok, tok, tok, struct{ T Token }{tok})
	if strings.Contains(out, tok.Reveal()) {
		t.Errorf("token leaked through formatting: %s", out)
	}
}
