package token

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/torrentclaw/cli/internal/ids"
)

// MaxGrants bounds the grants a task holds at once. When a task is full, a
// new grant first evicts every ended grant (expired, or past its grace),
// then, if none ended, the live grant that would end soonest among those not
// issued by [IssuerInternal]; only when every grant is internal does the
// soonest-ending internal one go. [Table.Verify] compares against exactly
// this many slots for every request.
const MaxGrants = 16

// Issuer says who made a grant.
type Issuer uint8

// The issuers of grants. The zero Issuer is invalid, so a forgotten field
// never replaces the origin's grant by accident.
const (
	// IssuerOrigin grants come from the web origin. A new one replaces the
	// task's current origin grant, which keeps working for the grace
	// period.
	IssuerOrigin Issuer = iota + 1
	// IssuerCLI grants come from the local CLI (stream, token issue). Each
	// one is added next to the others.
	IssuerCLI
	// IssuerInternal grants are the daemon's own (ffmpeg reading /stream
	// for an HLS session). Each one is added next to the others; they are
	// never persisted.
	IssuerInternal
)

// String returns "origin", "cli" or "internal".
func (i Issuer) String() string {
	switch i {
	case IssuerOrigin:
		return "origin"
	case IssuerCLI:
		return "cli"
	case IssuerInternal:
		return "internal"
	}
	return fmt.Sprintf("issuer(%d)", uint8(i))
}

func parseIssuer(s string) (Issuer, bool) {
	switch s {
	case "origin", "": // "" is a record written before issuers existed
		return IssuerOrigin, true
	case "cli":
		return IssuerCLI, true
	case "internal":
		return IssuerInternal, true
	}
	return 0, false
}

// Scope is what a grant opens, or what a request asks for.
type Scope struct {
	// SessionID binds a grant to one HLS session ("" = not bound). A bound
	// grant covers only requests that name that session, and ends with
	// [Table.EndSession].
	SessionID string
	// File limits a grant to one file index; -1 means every file of the
	// task. A request for the task as a whole (a playlist, a /stream
	// without file=) asks for -1, which only a task-wide grant covers.
	File int
}

// TaskScope is the scope of a grant for the whole task, and of a request
// that names neither a session nor a file.
func TaskScope() Scope { return Scope{File: -1} }

// covers reports whether a grant of scope g opens a request for want.
func (g Scope) covers(want Scope) bool {
	return (g.SessionID == "" || g.SessionID == want.SessionID) && (g.File == -1 || g.File == want.File)
}

// ErrInvalidGrant reports a grant with an unknown issuer, an empty task ID
// or a malformed scope.
var ErrInvalidGrant = errors.New("invalid grant")

// Options configure a [Table].
type Options struct {
	// TTL is the lifetime of a grant made without an explicit expiry.
	// Zero means 6h.
	TTL time.Duration
	// Grace is how long a replaced origin grant stays valid. Zero means
	// 60s; a negative value means no grace.
	Grace time.Duration
	// RequireToken refuses tasks that never had a grant. When false, such
	// a task is served token-less. It never affects a task that had a
	// grant.
	RequireToken bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type grant struct {
	hash      [32]byte
	iss       Issuer
	scope     Scope
	expiresAt time.Time
	// graceUntil is set when the grant was replaced: it then ends at
	// min(expiresAt, graceUntil).
	graceUntil time.Time
}

// end returns when g stops being valid.
func (g *grant) end() time.Time {
	if !g.graceUntil.IsZero() && g.graceUntil.Before(g.expiresAt) {
		return g.graceUntil
	}
	return g.expiresAt
}

func (g *grant) live(now time.Time) bool { return now.Before(g.end()) }

// replaced reports whether a newer origin grant took g's place.
func (g *grant) replaced() bool { return !g.graceUntil.IsZero() }

type taskGrants struct {
	grants []grant // at most MaxGrants
	// locked: revoked; nothing is served until a new grant.
	locked bool
	// everGranted: the task had a grant once, so it is never served
	// token-less again.
	everGranted bool
}

// Table maps task IDs to their grants. It is safe for concurrent use.
type Table struct {
	ttl, grace   time.Duration
	now          func() time.Time
	requireToken atomic.Bool

	// mu guards tasks.
	mu    sync.Mutex
	tasks map[string]*taskGrants
}

// New returns an empty table.
func New(opts Options) *Table {
	t := &Table{ttl: opts.TTL, grace: opts.Grace, now: opts.Now, tasks: map[string]*taskGrants{}}
	if t.ttl <= 0 {
		t.ttl = 6 * time.Hour
	}
	if t.grace == 0 {
		t.grace = 60 * time.Second
	}
	if t.grace < 0 {
		t.grace = 0
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.requireToken.Store(opts.RequireToken)
	return t
}

// RequireToken reports whether tasks that never had a grant are refused.
func (t *Table) RequireToken() bool { return t.requireToken.Load() }

// SetRequireToken changes [Options.RequireToken], e.g. on a config reload.
// It takes effect for the next [Table.Verify].
func (t *Table) SetRequireToken(v bool) { t.requireToken.Store(v) }

// Grant lets tok open taskID within sc until expiresAt (zero means now +
// TTL). An [IssuerOrigin] grant replaces the task's current origin grant:
// the same token only moves its expiry; a different one sends the old grant
// into its grace period (it ends at the earlier of its expiry and now +
// Grace), and every grant already in grace keeps its own end. [IssuerCLI]
// and [IssuerInternal] grants are added and touch no other grant (the same
// token, issuer and scope again only moves the expiry). A grant unlocks a
// revoked task. See [MaxGrants] for what a full task evicts.
func (t *Table) Grant(taskID string, tok Token, iss Issuer, sc Scope, expiresAt time.Time) error {
	if !Valid(string(tok)) {
		return ErrInvalid
	}
	if taskID == "" || sc.File < -1 || (sc.SessionID != "" && !ids.ValidSessionID(sc.SessionID)) {
		return ErrInvalidGrant
	}
	if iss < IssuerOrigin || iss > IssuerInternal {
		return ErrInvalidGrant
	}
	now := t.now()
	if expiresAt.IsZero() {
		expiresAt = now.Add(t.ttl)
	}
	h := Hash(string(tok))

	t.mu.Lock()
	defer t.mu.Unlock()
	tg := t.grantsOf(taskID)
	tg.locked = false
	tg.everGranted = true
	tg.prune(now)

	for i := range tg.grants {
		g := &tg.grants[i]
		if g.replaced() || g.iss != iss {
			continue
		}
		if g.hash == h && g.scope == sc {
			g.expiresAt = expiresAt
			return nil
		}
		if iss == IssuerOrigin {
			g.graceUntil = now.Add(t.grace)
		}
	}
	tg.prune(now) // a replacement with no grace has just ended
	if len(tg.grants) >= MaxGrants {
		tg.evict()
	}
	tg.grants = append(tg.grants, grant{hash: h, iss: iss, scope: sc, expiresAt: expiresAt})
	return nil
}

// grantsOf returns taskID's grants, adding an empty entry for a task the table does not
// know yet. The caller holds t.mu.
func (t *Table) grantsOf(taskID string) *taskGrants {
	tg := t.tasks[taskID]
	if tg == nil {
		tg = &taskGrants{}
		t.tasks[taskID] = tg
	}
	return tg
}

// prune drops ended grants.
func (tg *taskGrants) prune(now time.Time) {
	kept := tg.grants[:0]
	for _, g := range tg.grants {
		if g.live(now) {
			kept = append(kept, g)
		}
	}
	clear(tg.grants[len(kept):])
	tg.grants = kept
}

// evict drops the grant that ends soonest, preferring one not issued by
// the daemon itself. The caller has pruned ended grants.
func (tg *taskGrants) evict() {
	victim := -1
	for pass := 0; pass < 2 && victim < 0; pass++ {
		for i := range tg.grants {
			g := &tg.grants[i]
			if pass == 0 && g.iss == IssuerInternal {
				continue
			}
			if victim < 0 || g.end().Before(tg.grants[victim].end()) {
				victim = i
			}
		}
	}
	if victim >= 0 {
		tg.grants = slices.Delete(tg.grants, victim, victim+1)
	}
}

// Revoke ends every grant of taskID at once, with no grace, internal ones
// included, and locks the task: it answers nothing until a new grant, even
// when [Options.RequireToken] is false.
func (t *Table) Revoke(taskID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tg := t.grantsOf(taskID)
	tg.grants = nil
	tg.locked = true
}

// EndSession ends, with no grace, the grants of taskID bound to sessionID
// (an HLS session closed). Other grants are untouched.
func (t *Table) EndSession(taskID, sessionID string) {
	if sessionID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tg := t.tasks[taskID]
	if tg == nil {
		return
	}
	kept := tg.grants[:0]
	for _, g := range tg.grants {
		if g.scope.SessionID != sessionID {
			kept = append(kept, g)
		}
	}
	clear(tg.grants[len(kept):])
	tg.grants = kept
}

// Forget drops everything known about taskID: the task was removed. A new
// task with the same ID starts as never granted.
func (t *Table) Forget(taskID string) {
	t.mu.Lock()
	delete(t.tasks, taskID)
	t.mu.Unlock()
}

// dummyGrant fills the slots a task does not use, and every slot of a task
// the table does not know, so Verify compares against MaxGrants slots for
// every request. Its zero expiry keeps it from ever matching.
var dummyGrant = grant{hash: Hash("torrentclaw-no-such-token-0000000000000000000000000000"), scope: TaskScope()}

// noTask stands in for an unknown task so the lookup path is the same.
var noTask = &taskGrants{}

// Verify checks a presented token for a request on taskID asking for want.
// It returns nil when access is allowed and [ErrUnauthorized] otherwise.
//
// A task that ever had a grant (or was revoked) opens only for a live
// grant whose hash matches and whose scope covers want: the grant is bound
// to no session or to want.SessionID, and covers every file or want.File. A
// task that never had one is open to any presented value when
// [Options.RequireToken] is false, and refused when it is true.
//
// The work does not depend on the outcome: the presented value is hashed
// once and compared with [subtle.ConstantTimeCompare] against exactly
// [MaxGrants] slots (padded with a dummy), whether the task exists, has
// grants, or not, and whatever RequireToken says.
func (t *Table) Verify(taskID, presented string, want Scope) error {
	now := t.now()
	h := Hash(presented)
	shapeOK := Valid(presented)
	require := t.requireToken.Load()

	var slots [MaxGrants]grant
	t.mu.Lock()
	tg, known := t.tasks[taskID]
	if !known {
		tg = noTask
	}
	guarded, locked := tg.everGranted || tg.locked, tg.locked
	n := copy(slots[:], tg.grants)
	t.mu.Unlock()
	for i := n; i < MaxGrants; i++ {
		slots[i] = dummyGrant
	}

	match := 0
	for i := range slots {
		g := &slots[i]
		eq := subtle.ConstantTimeCompare(h[:], g.hash[:])
		ok := subtle.ConstantTimeSelect(b2i(g.live(now) && g.scope.covers(want)), 1, 0)
		match |= eq & ok
	}
	// Both outcomes are computed; which one counts depends on the task.
	granted := shapeOK && match == 1 && !locked // a locked task has no grants; Import may disagree
	open := !require
	if (guarded && granted) || (!guarded && open) {
		return nil
	}
	return ErrUnauthorized
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Info describes a task's grants without revealing them: what status
// commands may show.
type Info struct {
	// Grants counts the live grants; Origin, CLI and Internal split it by
	// issuer.
	Grants, Origin, CLI, Internal int
	// NextExpiry is when the first live grant ends; LastExpiry when the
	// last one does. Both are zero without live grants.
	NextExpiry, LastExpiry time.Time
	// Locked: revoked, serving nothing until a new grant.
	Locked bool
	// EverGranted: the task had a grant, so it is never served token-less.
	EverGranted bool
}

// Info returns what status commands may show about taskID's grants.
func (t *Table) Info(taskID string) Info {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	tg := t.tasks[taskID]
	if tg == nil {
		return Info{}
	}
	in := Info{Locked: tg.locked, EverGranted: tg.everGranted}
	for i := range tg.grants {
		g := &tg.grants[i]
		if !g.live(now) {
			continue
		}
		in.Grants++
		switch g.iss {
		case IssuerOrigin:
			in.Origin++
		case IssuerCLI:
			in.CLI++
		case IssuerInternal:
			in.Internal++
		}
		end := g.end()
		if in.NextExpiry.IsZero() || end.Before(in.NextExpiry) {
			in.NextExpiry = end
		}
		if end.After(in.LastExpiry) {
			in.LastExpiry = end
		}
	}
	return in
}
