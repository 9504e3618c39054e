package token

import (
	"bytes"
	"errors"
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

func TestVerify(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tab := New(Options{TTL: time.Hour, Grace: time.Minute, Now: clk.Now})
	tokA, tokB := mint(t), mint(t)
	if err := tab.SetTaskToken("a", tokA, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := tab.SetTaskToken("b", tokB, time.Time{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, task, tok string
		wantErr         bool
	}{
		{"right", "a", tokA.Reveal(), false},
		{"missing", "a", "", true},
		{"wrong", "a", strings.Repeat("0", 64), true},
		{"wrong length", "a", tokA.Reveal()[:40], true},
		{"too long", "a", tokA.Reveal() + tokA.Reveal() + "x", true},
		{"other task's token", "a", tokB.Reveal(), true},
		{"prefix of right", "a", tokA.Reveal() + "0", true},
		{"token-less task, require off", "c", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tab.Verify(tc.task, tc.tok)
			if (err != nil) != tc.wantErr {
				t.Errorf("Verify(%q, …) = %v, wantErr %v", tc.task, err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("Verify error = %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestRequireToken(t *testing.T) {
	tab := New(Options{RequireToken: true})
	if err := tab.Verify("none", ""); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Verify(token-less, require on) = %v, want ErrUnauthorized", err)
	}
	off := New(Options{})
	if err := off.Verify("none", "whatever"); err != nil {
		t.Errorf("Verify(token-less, require off) = %v, want nil", err)
	}
}

func TestExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tab := New(Options{TTL: time.Hour, Now: clk.Now})
	tok := mint(t)
	if err := tab.SetTaskToken("a", tok, time.Time{}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * time.Minute)
	if err := tab.Verify("a", tok.Reveal()); err != nil {
		t.Errorf("Verify before TTL = %v, want nil", err)
	}
	clk.Advance(time.Minute)
	if err := tab.Verify("a", tok.Reveal()); err == nil {
		t.Errorf("Verify at TTL = nil, want ErrUnauthorized")
	}
	// An expired token still makes the task require one.
	if err := tab.Verify("a", ""); err == nil {
		t.Errorf("Verify(expired task, no token) = nil, want ErrUnauthorized")
	}
	// Explicit expiry wins over the TTL.
	if err := tab.SetTaskToken("b", tok, clk.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	if err := tab.Verify("b", tok.Reveal()); err == nil {
		t.Errorf("Verify after explicit expiry = nil, want ErrUnauthorized")
	}
	info, ok := tab.Info("b")
	if !ok || !info.Expired {
		t.Errorf("Info(b) = %+v, %v; want expired", info, ok)
	}
}

func TestRotationGrace(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tab := New(Options{TTL: time.Hour, Grace: time.Minute, Now: clk.Now})
	old, cur := mint(t), mint(t)
	_ = tab.SetTaskToken("a", old, time.Time{})
	clk.Advance(time.Second)
	_ = tab.SetTaskToken("a", cur, time.Time{})
	if err := tab.Verify("a", old.Reveal()); err != nil {
		t.Errorf("Verify(old) within grace = %v, want nil", err)
	}
	if err := tab.Verify("a", cur.Reveal()); err != nil {
		t.Errorf("Verify(new) = %v, want nil", err)
	}
	clk.Advance(time.Minute)
	if err := tab.Verify("a", old.Reveal()); err == nil {
		t.Errorf("Verify(old) after grace = nil, want ErrUnauthorized")
	}
	if err := tab.Verify("a", cur.Reveal()); err != nil {
		t.Errorf("Verify(new) after grace = %v, want nil", err)
	}
	// Re-setting the same token only extends it and keeps no grace token.
	_ = tab.SetTaskToken("a", cur, clk.Now().Add(2*time.Hour))
	clk.Advance(90 * time.Minute)
	if err := tab.Verify("a", cur.Reveal()); err != nil {
		t.Errorf("Verify(extended) = %v, want nil", err)
	}
}

func TestClear(t *testing.T) {
	tab := New(Options{RequireToken: true})
	tok := mint(t)
	_ = tab.SetTaskToken("a", tok, time.Time{})
	tab.ClearTaskToken("a")
	if err := tab.Verify("a", tok.Reveal()); err == nil {
		t.Errorf("Verify after ClearTaskToken = nil, want ErrUnauthorized")
	}
	if tab.HasToken("a") {
		t.Errorf("HasToken after clear = true")
	}
}

func TestSetInvalid(t *testing.T) {
	tab := New(Options{})
	if err := tab.SetTaskToken("a", Token("short"), time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetTaskToken(short) = %v, want ErrInvalid", err)
	}
}

func TestExportImport(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tab := New(Options{TTL: time.Hour, Now: clk.Now})
	tok, exp := mint(t), mint(t)
	_ = tab.SetTaskToken("a", tok, time.Time{})
	_ = tab.SetTaskToken("b", exp, clk.Now().Add(time.Second))
	clk.Advance(time.Minute)
	recs := tab.Export()
	for _, r := range recs {
		if strings.Contains(fmt.Sprint(r), tok.Reveal()) {
			t.Fatalf("Export() leaks a plain token")
		}
	}
	tab2 := New(Options{TTL: time.Hour, Now: clk.Now})
	if n := tab2.Import(append(recs, Record{TaskID: "bad", Hash: "zz"})); n != 1 {
		t.Errorf("Import skipped %d, want 1", n)
	}
	if err := tab2.Verify("a", tok.Reveal()); err != nil {
		t.Errorf("Verify after Import = %v, want nil", err)
	}
	if err := tab2.Verify("b", ""); err == nil {
		t.Errorf("expired task lost its token requirement across Import")
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

func TestConcurrent(t *testing.T) {
	tab := New(Options{})
	tok := mint(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			id := fmt.Sprint("t", i%2)
			for range 200 {
				_ = tab.SetTaskToken(id, tok, time.Time{})
				_ = tab.Verify(id, tok.Reveal())
				tab.ClearTaskToken(id)
			}
		})
	}
	wg.Wait()
}

func FuzzVerify(f *testing.F) {
	tok := Token(strings.Repeat("ab", 32))
	for _, s := range []string{"", tok.Reveal(), tok.Reveal()[:63], strings.Repeat("Z", 128), "\x00", "%zz"} {
		f.Add("a", s)
	}
	f.Fuzz(func(t *testing.T, task, presented string) {
		tab := New(Options{RequireToken: true})
		_ = tab.SetTaskToken("a", tok, time.Time{})
		err := tab.Verify(task, presented)
		want := task == "a" && presented == tok.Reveal()
		if (err == nil) != want {
			t.Errorf("Verify(%q, %q) = %v, want allowed=%v", task, presented, err, want)
		}
		if Valid(presented) {
			for i := 0; i < len(presented); i++ {
				if !urlSafe(presented[i]) {
					t.Errorf("Valid(%q) = true with byte %q", presented, presented[i])
				}
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	tab := New(Options{})
	tok, _ := Mint()
	_ = tab.SetTaskToken("a", tok, time.Time{})
	s := tok.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		_ = tab.Verify("a", s)
	}
}
