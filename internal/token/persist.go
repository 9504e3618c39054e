package token

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// Record is the persisted form of one task's grants: hashes, never plain
// tokens. Grants bound to an HLS session and internal grants are not
// persisted (their sessions do not survive a restart), but the flags are,
// so a task that ever had a grant is never served token-less after a
// restart, and a revoked task stays locked.
type Record struct {
	TaskID      string        `json:"taskId"`
	Locked      bool          `json:"locked,omitempty"`
	EverGranted bool          `json:"everGranted,omitempty"`
	Grants      []GrantRecord `json:"grants,omitempty"`

	// Hash and ExpiresAt are the format written before grants existed
	// (one origin token per task). Import reads them as an origin grant;
	// Export never writes them.
	Hash      string    `json:"sha256,omitempty"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// GrantRecord is one persisted grant.
type GrantRecord struct {
	Hash   string `json:"sha256"` // hex SHA-256 of the token
	Issuer string `json:"issuer"` // "origin" or "cli"
	// File is the file scope: -1 for the whole task.
	File      int       `json:"file"`
	ExpiresAt time.Time `json:"expiresAt"`
	// GraceUntil is set on a replaced origin grant.
	GraceUntil time.Time `json:"graceUntil,omitzero"`
}

// Export returns every task's live persistable grants and flags for the
// state file, sorted by task ID.
func (t *Table) Export() []Record {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Record, 0, len(t.tasks))
	for id, tg := range t.tasks {
		r := Record{TaskID: id, Locked: tg.locked, EverGranted: tg.everGranted}
		for i := range tg.grants {
			g := &tg.grants[i]
			if !g.live(now) || g.iss == IssuerInternal || g.scope.SessionID != "" {
				continue
			}
			r.Grants = append(r.Grants, GrantRecord{
				Hash:       hex.EncodeToString(g.hash[:]),
				Issuer:     g.iss.String(),
				File:       g.scope.File,
				ExpiresAt:  g.expiresAt,
				GraceUntil: g.graceUntil,
			})
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.TaskID, b.TaskID) })
	return out
}

// Import restores records saved by [Table.Export] (or by the format before
// grants), replacing what the table knew about those tasks. It skips
// malformed records and grants (bad hash, unknown or internal issuer, bad
// file scope, more than [MaxGrants]) and reports how many it skipped. A
// task with any valid record is marked as ever granted even if all its
// grants were skipped, so it fails closed.
func (t *Table) Import(recs []Record) (skipped int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		if r.TaskID == "" {
			skipped++
			continue
		}
		tg := &taskGrants{locked: r.Locked, everGranted: r.EverGranted}
		grs := r.Grants
		if r.Hash != "" {
			// The format before grants: one origin token, which had been
			// granted.
			grs = append([]GrantRecord{{Hash: r.Hash, Issuer: "origin", File: -1, ExpiresAt: r.ExpiresAt}}, grs...)
			tg.everGranted = true
		}
		for _, gr := range grs {
			g, ok := gr.grant()
			if !ok || len(tg.grants) >= MaxGrants {
				skipped++
				tg.everGranted = true
				continue
			}
			tg.grants = append(tg.grants, g)
			tg.everGranted = true
		}
		t.tasks[r.TaskID] = tg
	}
	return skipped
}

func (gr GrantRecord) grant() (grant, bool) {
	b, err := hex.DecodeString(gr.Hash)
	iss, okIss := parseIssuer(gr.Issuer)
	if err != nil || len(b) != sha256.Size || !okIss || iss == IssuerInternal || gr.File < -1 {
		return grant{}, false
	}
	g := grant{iss: iss, scope: Scope{File: gr.File}, expiresAt: gr.ExpiresAt, graceUntil: gr.GraceUntil}
	copy(g.hash[:], b)
	return g, true
}
