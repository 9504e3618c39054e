package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Length limits of a token, in characters.
const (
	MinLength = 32
	MaxLength = 128
)

// ErrUnauthorized is returned by [Table.Verify] for every failure: unknown
// task, missing, wrong, expired or malformed token. Callers must not be able
// to tell these cases apart.
var ErrUnauthorized = errors.New("unauthorized")

// ErrInvalid reports a token that is not 32–128 URL-safe characters.
var ErrInvalid = errors.New("token must be 32-128 url-safe characters")

// Token is a secret stream token. It redacts itself when printed or logged.
type Token string

// String returns "REDACTED" so a token never leaks through fmt.
func (Token) String() string { return "REDACTED" }

// GoString returns "REDACTED" so a token never leaks through %#v.
func (Token) GoString() string { return "REDACTED" }

// LogValue implements [slog.LogValuer].
func (Token) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Reveal returns the plain token, for the few places that must put it in a
// URL or a reply to its owner.
func (t Token) Reveal() string { return string(t) }

// Mint returns a new token: 32 bytes from crypto/rand, hex encoded.
func Mint() (Token, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return Token(hex.EncodeToString(b[:])), nil
}

// Valid reports whether s has the shape of a token: 32–128 characters from
// the URL-safe set [A-Za-z0-9._~-].
func Valid(s string) bool {
	if len(s) < MinLength || len(s) > MaxLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !urlSafe(s[i]) {
			return false
		}
	}
	return true
}

func urlSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '-' || c == '_' || c == '.' || c == '~':
		return true
	}
	return false
}

// Hash returns the SHA-256 of a token, the only form the table keeps.
func Hash(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// Options configure a [Table].
type Options struct {
	// TTL is the lifetime of a token set without an explicit expiry.
	// Zero means 6h.
	TTL time.Duration
	// Grace is how long a replaced token stays valid. Zero means 60s;
	// a negative value means no grace.
	Grace time.Duration
	// RequireToken refuses tasks that have no token. When false, a task
	// without a token is served token-less.
	RequireToken bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type entry struct {
	hash      [32]byte
	expiresAt time.Time
}

type taskTokens struct {
	cur  entry
	prev *entry // valid until min(prev.expiresAt, graceUntil)
	// graceUntil bounds prev.
	graceUntil time.Time
}

// Table maps task IDs to token hashes. It is safe for concurrent use.
type Table struct {
	ttl, grace   time.Duration
	requireToken bool
	now          func() time.Time

	// mu guards tasks.
	mu    sync.Mutex
	tasks map[string]*taskTokens
}

// New returns an empty table.
func New(opts Options) *Table {
	t := &Table{ttl: opts.TTL, grace: opts.Grace, requireToken: opts.RequireToken, now: opts.Now, tasks: map[string]*taskTokens{}}
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
	return t
}

// RequireToken reports whether token-less tasks are refused.
func (t *Table) RequireToken() bool { return t.requireToken }

// SetTaskToken makes tok the token of taskID, valid until expiresAt (zero
// means now + TTL). A different previous token stays valid for the grace
// period so a playing video survives rotation. Setting the current token
// again only updates its expiry.
func (t *Table) SetTaskToken(taskID string, tok Token, expiresAt time.Time) error {
	if !Valid(string(tok)) {
		return ErrInvalid
	}
	now := t.now()
	if expiresAt.IsZero() {
		expiresAt = now.Add(t.ttl)
	}
	h := Hash(string(tok))
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.tasks[taskID]
	nt := &taskTokens{cur: entry{hash: h, expiresAt: expiresAt}}
	if ok {
		if old.cur.hash == h {
			old.cur.expiresAt = expiresAt
			return nil
		}
		if t.grace > 0 && now.Before(old.cur.expiresAt) {
			prev := old.cur
			nt.prev = &prev
			nt.graceUntil = now.Add(t.grace)
		}
	}
	t.tasks[taskID] = nt
	return nil
}

// ClearTaskToken forgets every token of taskID at once (no grace).
func (t *Table) ClearTaskToken(taskID string) {
	t.mu.Lock()
	delete(t.tasks, taskID)
	t.mu.Unlock()
}

// HasToken reports whether taskID has a token (expired or not).
func (t *Table) HasToken(taskID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.tasks[taskID]
	return ok
}

// Info describes a task's token without revealing it.
type Info struct {
	ExpiresAt time.Time
	Expired   bool
}

// Info returns what status commands may show about taskID's token.
func (t *Table) Info(taskID string) (Info, bool) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	tt, ok := t.tasks[taskID]
	if !ok {
		return Info{}, false
	}
	return Info{ExpiresAt: tt.cur.expiresAt, Expired: !now.Before(tt.cur.expiresAt)}, true
}

// dummy is compared against when a task has no entry, so the work done does
// not depend on whether the task exists.
var dummy = Hash("torrentclaw-no-such-token-0000000000000000000000000000")

// Verify checks a presented token for taskID. It returns nil when access is
// allowed and [ErrUnauthorized] otherwise. It hashes the presented value and
// compares two hashes in constant time whatever the case, so timing does not
// tell whether the task exists or has a token.
func (t *Table) Verify(taskID, presented string) error {
	now := t.now()
	h := Hash(presented)
	shapeOK := Valid(presented)

	t.mu.Lock()
	tt, ok := t.tasks[taskID]
	cur, prev := dummy, dummy
	var curExp, prevExp time.Time
	if ok {
		cur, curExp = tt.cur.hash, tt.cur.expiresAt
		if tt.prev != nil {
			prev = tt.prev.hash
			prevExp = tt.prev.expiresAt
			if tt.graceUntil.Before(prevExp) {
				prevExp = tt.graceUntil
			}
		}
	}
	t.mu.Unlock()

	curOK := subtle.ConstantTimeCompare(h[:], cur[:]) == 1 && now.Before(curExp)
	prevOK := subtle.ConstantTimeCompare(h[:], prev[:]) == 1 && now.Before(prevExp)
	switch {
	case ok && shapeOK && (curOK || prevOK):
		return nil
	case !ok && !t.requireToken:
		// A task without a token is served token-less, whatever was
		// presented, when the operator allows it.
		return nil
	}
	return ErrUnauthorized
}

// Record is the persisted form of a task's token: its hash and expiry only.
type Record struct {
	TaskID    string    `json:"taskId"`
	Hash      string    `json:"sha256"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Export returns the current token hashes for the state file. Expired
// tokens are kept: a task that had a token must go on requiring one after a
// restart. Grace-period tokens are not exported.
func (t *Table) Export() []Record {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Record, 0, len(t.tasks))
	for id, tt := range t.tasks {
		out = append(out, Record{TaskID: id, Hash: hex.EncodeToString(tt.cur.hash[:]), ExpiresAt: tt.cur.expiresAt})
	}
	return out
}

// Import restores records saved by [Table.Export], skipping malformed ones.
// It reports how many it skipped.
func (t *Table) Import(recs []Record) (skipped int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		b, err := hex.DecodeString(r.Hash)
		if err != nil || len(b) != sha256.Size || r.TaskID == "" {
			skipped++
			continue
		}
		var h [32]byte
		copy(h[:], b)
		t.tasks[r.TaskID] = &taskTokens{cur: entry{hash: h, expiresAt: r.ExpiresAt}}
	}
	return skipped
}
