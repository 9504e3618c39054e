package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var validTokenRe = regexp.MustCompile(`^[A-Za-z0-9._~-]{32,128}$`)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// tk returns a distinct, valid token per name, so cases can name them.
func tk(name string) Token {
	return Token(fmt.Sprintf("%-40s", "tok-"+name)[:40]).pad()
}

// pad turns the spaces of a padded name into URL-safe underscores.
func (t Token) pad() Token { return Token(strings.ReplaceAll(string(t), " ", "_")) }

// op is one step of a scenario: a grant, a revocation, a clock move, or a
// check of what verifies.
type op struct {
	advance time.Duration

	grant   string // token name
	task    string // default "a"
	iss     Issuer
	scope   *Scope // default TaskScope()
	expires time.Duration
	wantErr error

	revoke, forget bool
	endSess        string
	setRequire     *bool

	check   string // token name to present ("-" = empty, "!" = malformed)
	want    *Scope // default TaskScope()
	allowed bool
}

func sc(sess string, file int) *Scope { return &Scope{SessionID: sess, File: file} }
func bp(b bool) *bool                 { return &b }

func (o op) taskID() string {
	if o.task == "" {
		return "a"
	}
	return o.task
}

func run(t *testing.T, tab *Table, clk *fakeClock, ops []op) {
	t.Helper()
	for i, o := range ops {
		switch {
		case o.advance != 0:
			clk.Advance(o.advance)
		case o.grant != "":
			s := TaskScope()
			if o.scope != nil {
				s = *o.scope
			}
			iss := o.iss
			if iss == 0 {
				iss = IssuerOrigin
			}
			var exp time.Time
			if o.expires != 0 {
				exp = clk.Now().Add(o.expires)
			}
			if err := tab.Grant(o.taskID(), tk(o.grant), iss, s, exp); !errors.Is(err, o.wantErr) {
				t.Fatalf("step %d: Grant(%s, %s, %v) = %v, want %v", i, o.taskID(), o.grant, iss, err, o.wantErr)
			}
		case o.revoke:
			tab.Revoke(o.taskID())
		case o.forget:
			tab.Forget(o.taskID())
		case o.endSess != "":
			tab.EndSession(o.taskID(), o.endSess)
		case o.setRequire != nil:
			tab.SetRequireToken(*o.setRequire)
		case o.check != "":
			presented := tk(o.check).Reveal()
			switch o.check {
			case "-":
				presented = ""
			case "!":
				presented = "not a token"
			}
			want := TaskScope()
			if o.want != nil {
				want = *o.want
			}
			err := tab.Verify(o.taskID(), presented, want)
			if (err == nil) != o.allowed {
				t.Errorf("step %d (t=%v): Verify(%s, %s, %+v) = %v, want allowed=%v", i, clk.Now().Sub(t0), o.taskID(), o.check, want, err, o.allowed)
			}
			if err != nil && !errors.Is(err, ErrUnauthorized) {
				t.Errorf("step %d: Verify error = %v, want ErrUnauthorized", i, err)
			}
		}
	}
}

func TestGrants(t *testing.T) {
	tests := []struct {
		name    string
		require bool
		ops     []op
	}{
		{"two replacements within grace: every replaced grant keeps its grace", false, []op{
			{grant: "A"},
			{advance: 10 * time.Second},
			{grant: "B"}, // A ends at 70s
			{advance: 10 * time.Second},
			{grant: "C"}, // B ends at 80s
			{advance: 10 * time.Second},
			{check: "A", allowed: true}, {check: "B", allowed: true}, {check: "C", allowed: true},
			{advance: 39 * time.Second}, // 69s
			{check: "A", allowed: true},
			{advance: time.Second}, // 70s
			{check: "A"}, {check: "B", allowed: true}, {check: "C", allowed: true},
			{advance: 10 * time.Second}, // 80s
			{check: "B"}, {check: "C", allowed: true},
		}},
		{"many replacements within grace all survive", false, []op{
			{grant: "A"}, {grant: "B"}, {grant: "C"}, {grant: "D"}, {grant: "E"},
			{check: "A", allowed: true}, {check: "B", allowed: true}, {check: "D", allowed: true}, {check: "E", allowed: true},
			{advance: time.Minute},
			{check: "A"}, {check: "D"}, {check: "E", allowed: true},
		}},
		{"replaced grant ends at its own expiry if sooner than grace", false, []op{
			{grant: "A", expires: 10 * time.Second},
			{grant: "B"},
			{advance: 10 * time.Second},
			{check: "A"}, {check: "B", allowed: true},
		}},
		{"same origin token only moves its expiry", false, []op{
			{grant: "A", expires: time.Minute},
			{grant: "B"},
			{grant: "B", expires: 2 * time.Hour},
			{advance: 30 * time.Second},
			{check: "A", allowed: true}, // the refresh did not replace again
			{advance: 90 * time.Minute},
			{check: "A"}, {check: "B", allowed: true},
			{advance: time.Hour},
			{check: "B"},
		}},
		{"cli and internal grants add and touch no other", false, []op{
			{grant: "O"},
			{grant: "C1", iss: IssuerCLI},
			{grant: "C2", iss: IssuerCLI},
			{grant: "I", iss: IssuerInternal, scope: sc("s1", 0)},
			{advance: 2 * time.Hour},
			{check: "O"}, {check: "C1"}, // default TTL is 1h in this table
			{grant: "O2"}, {grant: "C3", iss: IssuerCLI}, {grant: "C4", iss: IssuerCLI},
			{advance: 5 * time.Minute},
			{check: "O2", allowed: true}, {check: "C3", allowed: true}, {check: "C4", allowed: true},
			{grant: "O3"}, // replaces O2 only
			{advance: 5 * time.Minute},
			{check: "O2"}, {check: "C3", allowed: true}, {check: "C4", allowed: true}, {check: "O3", allowed: true},
		}},
		{"revoke ends every grant, internal included, and locks", false, []op{
			{grant: "O"}, {grant: "C", iss: IssuerCLI},
			{grant: "I", iss: IssuerInternal, scope: sc("s1", 0)},
			{check: "I", want: sc("s1", 0), allowed: true},
			{grant: "O2"}, // O in grace
			{revoke: true},
			{check: "O"}, {check: "O2"}, {check: "C"},
			{check: "I", want: sc("s1", 0)},
			{check: "-"}, {check: "!"},
			{advance: time.Hour},
			{check: "-"},
			{grant: "N", iss: IssuerCLI}, // a new grant unlocks
			{check: "N", allowed: true}, {check: "O"}, {check: "C"}, {check: "-"},
		}},
		{"stop-stream locks: no token and old token refused, flag off", false, []op{
			{check: "-", allowed: true}, // never granted, flag off: open
			{grant: "O"},
			{check: "-"},
			{revoke: true},
			{check: "-"}, {check: "O"}, {check: "!"},
			{check: "-", task: "never", allowed: true},
		}},
		{"stop-stream locks: no token and old token refused, flag on", true, []op{
			{grant: "O"},
			{revoke: true},
			{check: "-"}, {check: "O"},
			{check: "-", task: "never"},
			{check: "O", task: "never"},
		}},
		{"revoke of a never-granted task locks it", false, []op{
			{revoke: true},
			{check: "-"},
			{check: "-", task: "b", allowed: true},
		}},
		{"expired grants keep the task guarded", false, []op{
			{grant: "A"},
			{advance: 59 * time.Minute},
			{check: "A", allowed: true},
			{advance: time.Minute},
			{check: "A"}, {check: "-"}, {check: "!"},
			{grant: "B", expires: time.Second},
			{advance: time.Second},
			{check: "B"},
		}},
		{"never granted: flag decides, toggled at run time", false, []op{
			{check: "-", allowed: true}, {check: "!", allowed: true}, {check: "X", allowed: true},
			{setRequire: bp(true)},
			{check: "-"}, {check: "X"},
			{setRequire: bp(false)},
			{check: "-", allowed: true},
		}},
		{"forget makes the ID new again", true, []op{
			{grant: "A"}, {forget: true},
			{check: "A"},
			{setRequire: bp(false)},
			{check: "-", allowed: true},
		}},
		{"grants are per task", false, []op{
			{grant: "A"},
			{grant: "B", task: "b"},
			{check: "A", task: "b"}, {check: "B", allowed: true, task: "b"}, {check: "B"},
		}},
		{"file-scoped internal grant opens only its session and file", false, []op{
			{grant: "I", iss: IssuerInternal, scope: sc("s1", 2)},
			{grant: "B", task: "b"},
			{check: "I", want: sc("s1", 2), allowed: true},
			{check: "I", want: sc("s1", -1)}, // the playlist / default file
			{check: "I"},
			{check: "I", want: sc("s1", 3)},
			{check: "I", want: sc("s2", 2)},
			{check: "I", want: sc("", 2)},
			{check: "I", want: sc("s1", 2), task: "b"},
			{endSess: "s2"},
			{check: "I", want: sc("s1", 2), allowed: true},
			{endSess: "s1"},
			{check: "I", want: sc("s1", 2)},
		}},
		{"task-wide grant covers every session and file", false, []op{
			{grant: "A", iss: IssuerCLI},
			{check: "A", allowed: true}, {check: "A", want: sc("s1", 4), allowed: true}, {check: "A", want: sc("", 0), allowed: true},
			{endSess: "s1"},
			{check: "A", allowed: true},
		}},
		{"session-bound grant needs its session, ends with it", false, []op{
			{grant: "S", scope: sc("s1", -1)},
			{grant: "T", iss: IssuerCLI},
			{check: "S", want: sc("s1", -1), allowed: true}, {check: "S", want: sc("s1", 7), allowed: true},
			{check: "S"}, {check: "S", want: sc("s2", -1)},
			{endSess: "s1"},
			{check: "S", want: sc("s1", -1)}, {check: "T", allowed: true},
		}},
		{"invalid grants are refused and change nothing", false, []op{
			{grant: "A", iss: Issuer(9), wantErr: ErrInvalidGrant},
			{grant: "A", scope: sc("", -2), wantErr: ErrInvalidGrant},
			{grant: "A", scope: sc("bad session!", -1), wantErr: ErrInvalidGrant},
			{check: "-", allowed: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: t0}
			tab := New(Options{TTL: time.Hour, Grace: time.Minute, RequireToken: tc.require, Now: clk.Now})
			run(t, tab, clk, tc.ops)
		})
	}
}

func TestGrantInvalidToken(t *testing.T) {
	tab := New(Options{})
	if err := tab.Grant("a", Token("short"), IssuerCLI, TaskScope(), time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Grant(short token) = %v, want ErrInvalid", err)
	}
	if err := tab.Grant("", tk("A"), IssuerCLI, TaskScope(), time.Time{}); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("Grant(empty task) = %v, want ErrInvalidGrant", err)
	}
	if err := tab.Grant("a", tk("A"), 0, TaskScope(), time.Time{}); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("Grant(zero issuer) = %v, want ErrInvalidGrant", err)
	}
	if in := tab.Info("a"); in.EverGranted {
		t.Errorf("Info after refused grants = %+v, want never granted", in)
	}
}

func TestNoGrace(t *testing.T) {
	clk := &fakeClock{t: t0}
	tab := New(Options{Grace: -1, Now: clk.Now})
	run(t, tab, clk, []op{
		{grant: "A"}, {grant: "B"},
		{check: "A"}, {check: "B", allowed: true},
	})
	if in := tab.Info("a"); in.Grants != 1 {
		t.Errorf("Info(a).Grants = %d, want 1 (a replaced grant with no grace is gone)", in.Grants)
	}
}

func TestBounds(t *testing.T) {
	clk := &fakeClock{t: t0}
	tab := New(Options{TTL: time.Hour, Grace: time.Minute, Now: clk.Now})
	name := func(i int) string { return fmt.Sprint("G", i) }

	t.Run("hundreds of grants stay bounded, newest win", func(t *testing.T) {
		for i := range 300 {
			if err := tab.Grant("many", tk(name(i)), IssuerCLI, TaskScope(), t0.Add(time.Hour+time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
			if n := tab.Info("many").Grants; n > MaxGrants {
				t.Fatalf("after %d grants Info.Grants = %d, want <= %d", i+1, n, MaxGrants)
			}
		}
		for i := 300 - MaxGrants; i < 300; i++ {
			if err := tab.Verify("many", tk(name(i)).Reveal(), TaskScope()); err != nil {
				t.Errorf("Verify(%s) = %v, want nil (one of the last %d)", name(i), err, MaxGrants)
			}
		}
		if err := tab.Verify("many", tk(name(300-MaxGrants-1)).Reveal(), TaskScope()); err == nil {
			t.Errorf("Verify(evicted grant) = nil, want ErrUnauthorized")
		}
	})

	t.Run("ended grants are evicted first", func(t *testing.T) {
		for i := range MaxGrants - 1 {
			_ = tab.Grant("ended", tk(name(i)), IssuerCLI, TaskScope(), t0.Add(time.Hour))
		}
		_ = tab.Grant("ended", tk("short"), IssuerCLI, TaskScope(), clk.Now().Add(time.Second))
		clk.Advance(time.Second)
		_ = tab.Grant("ended", tk("new"), IssuerCLI, TaskScope(), time.Time{})
		for i := range MaxGrants - 1 {
			if err := tab.Verify("ended", tk(name(i)).Reveal(), TaskScope()); err != nil {
				t.Errorf("Verify(%s) = %v, want nil", name(i), err)
			}
		}
	})

	t.Run("internal grants are evicted last", func(t *testing.T) {
		for i := range MaxGrants - 1 {
			_ = tab.Grant("int", tk(name(i)), IssuerInternal, Scope{SessionID: name(i), File: 0}, t0.Add(time.Minute))
		}
		_ = tab.Grant("int", tk("cli"), IssuerCLI, TaskScope(), t0.Add(5*time.Hour))
		_ = tab.Grant("int", tk("cli2"), IssuerCLI, TaskScope(), t0.Add(6*time.Hour))
		if err := tab.Verify("int", tk("cli").Reveal(), TaskScope()); err == nil {
			t.Errorf("Verify(cli) = nil, want it evicted before the sooner-ending internal grants")
		}
		for i := range MaxGrants - 1 {
			if err := tab.Verify("int", tk(name(i)).Reveal(), Scope{SessionID: name(i), File: 0}); err != nil {
				t.Errorf("Verify(internal %s) = %v, want nil", name(i), err)
			}
		}
		in := tab.Info("int")
		if in.Grants != MaxGrants || in.Internal != MaxGrants-1 || in.CLI != 1 {
			t.Errorf("Info(int) = %+v, want %d grants, %d internal, 1 cli", in, MaxGrants, MaxGrants-1)
		}
	})
}

func TestInfo(t *testing.T) {
	clk := &fakeClock{t: t0}
	tab := New(Options{TTL: time.Hour, Grace: time.Minute, Now: clk.Now})
	if in := tab.Info("a"); in != (Info{}) {
		t.Errorf("Info(unknown) = %+v, want zero", in)
	}
	_ = tab.Grant("a", tk("O"), IssuerOrigin, TaskScope(), time.Time{})
	_ = tab.Grant("a", tk("O2"), IssuerOrigin, TaskScope(), t0.Add(3*time.Hour))
	_ = tab.Grant("a", tk("C"), IssuerCLI, TaskScope(), t0.Add(2*time.Hour))
	_ = tab.Grant("a", tk("I"), IssuerInternal, Scope{SessionID: "s", File: 1}, t0.Add(2*time.Hour))
	want := Info{Grants: 4, Origin: 2, CLI: 1, Internal: 1, NextExpiry: t0.Add(time.Minute), LastExpiry: t0.Add(3 * time.Hour), EverGranted: true}
	if got := tab.Info("a"); got != want {
		t.Errorf("Info(a) = %+v, want %+v", got, want)
	}
	tab.Revoke("a")
	want = Info{Locked: true, EverGranted: true}
	if got := tab.Info("a"); got != want {
		t.Errorf("Info(a) after Revoke = %+v, want %+v", got, want)
	}
}

func TestExportImport(t *testing.T) {
	clk := &fakeClock{t: t0}
	opts := Options{TTL: time.Hour, Grace: time.Minute, Now: clk.Now}
	tab := New(opts)
	run(t, tab, clk, []op{
		{grant: "OLD"},
		{advance: 10 * time.Second},
		{grant: "CUR"}, // OLD in grace until 70s
		{grant: "CLI", iss: IssuerCLI, scope: sc("", 3)},        // persisted, file-scoped
		{grant: "SESS", iss: IssuerCLI, scope: sc("s1", -1)},    // session-bound: not persisted
		{grant: "INT", iss: IssuerInternal, scope: sc("s1", 0)}, // internal: not persisted
		{grant: "ONLYINT", task: "internal-only", iss: IssuerInternal, scope: sc("s2", 0)},
		{grant: "X", task: "locked"},
		{revoke: true, task: "locked"},
		{grant: "GONE", task: "expired", expires: time.Second},
		{advance: time.Second},
	})
	recs := tab.Export()
	data, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"OLD", "CUR", "CLI", "SESS", "INT", "ONLYINT", "X", "GONE"} {
		if strings.Contains(string(data), tk(name).Reveal()) || strings.Contains(fmt.Sprint(recs), tk(name).Reveal()) {
			t.Fatalf("Export() leaks the plain token %s: %s", name, data)
		}
	}
	var back []Record
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	tab2 := New(opts)
	if n := tab2.Import(back); n != 0 {
		t.Errorf("Import(Export()) skipped %d, want 0", n)
	}
	run(t, tab2, clk, []op{
		{check: "OLD", allowed: true}, {check: "CUR", allowed: true},
		{check: "CLI", want: sc("", 3), allowed: true}, {check: "CLI"},
		{check: "SESS", want: sc("s1", -1)},
		{check: "INT", want: sc("s1", 0)},
		{check: "-"},
		{check: "-", task: "internal-only"}, // ever granted survives
		{check: "-", task: "locked"}, {check: "X", task: "locked"},
		{check: "-", task: "expired"},
		{check: "-", task: "never", allowed: true},
		{advance: time.Minute},
		{check: "OLD"}, {check: "CUR", allowed: true},
	})
	if got, want := tab2.Info("locked"), (Info{Locked: true, EverGranted: true}); got != want {
		t.Errorf("Info(locked) after Import = %+v, want %+v", got, want)
	}
	// Export of the import is the same as the first export (ended grace
	// grants aside).
	again := New(opts)
	again.Import(back)
	if a, b := fmt.Sprint(again.Export()), fmt.Sprint(tab2.Export()); a == "" || !strings.Contains(a, "internal-only") || !strings.Contains(b, "locked") {
		t.Errorf("Export after Import lost tasks: %s", a)
	}
}

func TestImportMalformedAndOldFormat(t *testing.T) {
	clk := &fakeClock{t: t0}
	tab := New(Options{Now: clk.Now})
	h := Hash(tk("A").Reveal())
	good := fmt.Sprintf("%x", h[:])
	recs := []Record{
		{TaskID: "old", Hash: good, ExpiresAt: t0.Add(time.Hour)}, // before grants
		{TaskID: "", Hash: good},
		{TaskID: "badhash", Grants: []GrantRecord{{Hash: "zz", Issuer: "origin", File: -1, ExpiresAt: t0.Add(time.Hour)}}},
		{TaskID: "badiss", Grants: []GrantRecord{{Hash: good, Issuer: "mallory", File: -1, ExpiresAt: t0.Add(time.Hour)}}},
		{TaskID: "internal", Grants: []GrantRecord{{Hash: good, Issuer: "internal", File: 0, ExpiresAt: t0.Add(time.Hour)}}},
		{TaskID: "badfile", Grants: []GrantRecord{{Hash: good, Issuer: "cli", File: -5, ExpiresAt: t0.Add(time.Hour)}}},
	}
	var tooMany Record
	tooMany.TaskID = "toomany"
	for range MaxGrants + 3 {
		tooMany.Grants = append(tooMany.Grants, GrantRecord{Hash: good, Issuer: "cli", File: -1, ExpiresAt: t0.Add(time.Hour)})
	}
	recs = append(recs, tooMany, Record{TaskID: "lockedwithgrant", Locked: true, EverGranted: true,
		Grants: []GrantRecord{{Hash: good, Issuer: "cli", File: -1, ExpiresAt: t0.Add(time.Hour)}}})
	if n, want := tab.Import(recs), 8; n != want {
		t.Errorf("Import skipped %d, want %d", n, want)
	}
	run(t, tab, clk, []op{
		{check: "A", task: "old", allowed: true},
		{check: "-", task: "old"},
		// A task whose grants were all skipped fails closed.
		{check: "-", task: "badhash"}, {check: "A", task: "badhash"},
		{check: "-", task: "badiss"}, {check: "-", task: "internal"}, {check: "A", task: "internal", want: sc("", 0)},
		{check: "A", task: "toomany", allowed: true},
		{check: "A", task: "lockedwithgrant"}, // locked wins over a grant in a hand-edited file
	})
	if n := tab.Info("toomany").Grants; n != MaxGrants {
		t.Errorf("Info(toomany).Grants = %d, want %d", n, MaxGrants)
	}
}

// TestConcurrent hammers the table from many goroutines under -race and
// checks the invariants that must hold at every moment.
func TestConcurrent(t *testing.T) {
	tab := New(Options{TTL: time.Hour, Grace: time.Minute, RequireToken: true})
	never := tk("never").Reveal()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				id := fmt.Sprint("t", (g+i)%3)
				tok := tk(fmt.Sprint(g, "-", i%20))
				switch i % 7 {
				case 0:
					tab.Revoke(id)
				case 1:
					tab.EndSession(id, "s1")
				case 2:
					_ = tab.Grant(id, tok, IssuerInternal, Scope{SessionID: "s1", File: 0}, time.Time{})
				case 3:
					tab.Forget(id)
				case 4:
					_ = tab.Export()
				default:
					_ = tab.Grant(id, tok, Issuer(1+i%2), TaskScope(), time.Time{})
				}
				if err := tab.Verify(id, never, TaskScope()); err == nil {
					t.Errorf("Verify(%s, never-granted token) = nil", id)
				}
				if n := tab.Info(id).Grants; n > MaxGrants {
					t.Errorf("Info(%s).Grants = %d > %d", id, n, MaxGrants)
				}
			}
		})
	}
	wg.Wait()
}

// FuzzVerify checks Verify against a plain reference model of a table with
// a few grants, for any task, presented value and requested scope.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{"", tk("O").Reveal(), tk("I").Reveal(), tk("O").Reveal()[:39], strings.Repeat("Z", 128), "\x00", "%zz"} {
		f.Add("a", s, "s1", 0)
		f.Add("a", s, "", -1)
	}
	f.Add("b", "", "", -1)
	f.Add("never", "", "s2", 3)
	type ref struct {
		task, tok string
		scope     Scope
	}
	grants := []ref{
		{"a", tk("O").Reveal(), TaskScope()},
		{"a", tk("I").Reveal(), Scope{SessionID: "s1", File: 0}},
		{"b", tk("S").Reveal(), Scope{SessionID: "s2", File: -1}},
	}
	f.Fuzz(func(t *testing.T, task, presented, session string, file int) {
		for _, require := range []bool{false, true} {
			tab := New(Options{RequireToken: require})
			tab.Revoke("locked")
			iss := map[bool]Issuer{false: IssuerCLI, true: IssuerInternal}
			for _, g := range grants {
				if err := tab.Grant(g.task, Token(g.tok), iss[g.scope.SessionID != ""], g.scope, time.Time{}); err != nil {
					t.Fatal(err)
				}
			}
			want := Scope{SessionID: session, File: file}
			err := tab.Verify(task, presented, want)
			allowed := false
			guarded := task == "locked"
			for _, g := range grants {
				if g.task != task {
					continue
				}
				guarded = true
				if g.tok == presented && (g.scope.SessionID == "" || g.scope.SessionID == session) && (g.scope.File == -1 || g.scope.File == file) {
					allowed = true
				}
			}
			if !guarded {
				allowed = !require
			}
			if (err == nil) != allowed {
				t.Errorf("Verify(%q, %q, %+v) require=%v = %v, want allowed=%v", task, presented, want, require, err, allowed)
			}
		}
		if got, want := Valid(presented), validTokenRe.MatchString(presented); got != want {
			t.Errorf("Valid(%q) = %v, regexp says %v", presented, got, want)
		}
	})
}

// BenchmarkVerifyUnauthorized measures the unauthorized path for an unknown
// task and for a known task with a wrong token, with the flag on and off.
// The numbers are reported, never asserted: timing depends on the machine.
func BenchmarkVerifyUnauthorized(b *testing.B) {
	tab := New(Options{})
	for i := range 4 {
		_ = tab.Grant("known", tk(fmt.Sprint("k", i)), IssuerCLI, TaskScope(), time.Time{})
	}
	wrong := tk("wrong").Reveal()
	for _, require := range []bool{false, true} {
		tab.SetRequireToken(require)
		for _, c := range []struct{ name, task string }{{"unknown", "unknown"}, {"known-wrong", "known"}} {
			b.Run(fmt.Sprintf("require=%v/%s", require, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = tab.Verify(c.task, wrong, TaskScope())
				}
			})
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	tab := New(Options{})
	tok, _ := Mint()
	_ = tab.Grant("a", tok, IssuerOrigin, TaskScope(), time.Time{})
	s := tok.Reveal()
	b.ReportAllocs()
	for b.Loop() {
		_ = tab.Verify("a", s, TaskScope())
	}
}
