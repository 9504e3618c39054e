package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/torrentclaw/cli/internal/atomicfile"
	"github.com/torrentclaw/cli/internal/token"
)

// stateVersion is bumped when the state file's shape changes incompatibly.
const stateVersion = 1

// state is what survives a restart: the tasks (how to add them again) and the
// hashes of their tokens. Plain tokens are never written.
type state struct {
	Version int            `json:"version"`
	AgentID string         `json:"agentId,omitempty"`
	Tasks   []taskRecord   `json:"tasks"`
	Tokens  []token.Record `json:"tokens"`
}

// taskRecord is enough to add a task again after a restart.
type taskRecord struct {
	ID        string `json:"id"`
	Source    string `json:"source"`
	InfoHash  string `json:"infoHash,omitempty"`
	FileIndex int    `json:"fileIndex"`
	Title     string `json:"title,omitempty"`
	Stream    bool   `json:"stream,omitempty"`
	Paused    bool   `json:"paused,omitempty"`
	FromOrig  bool   `json:"fromOrigin,omitempty"`
	// SeedPath is set for tasks made by Seed: they are seeded again from
	// this file or directory after a restart.
	SeedPath string    `json:"seedPath,omitempty"`
	AddedAt  time.Time `json:"addedAt"`
}

// loadState reads the state file. A missing file is an empty state.
func loadState(path string) (state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return state{Version: stateVersion}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("read state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return state{}, fmt.Errorf("parse state %s: %w", path, err)
	}
	if st.Version != stateVersion {
		return state{}, fmt.Errorf("state %s: unsupported version %d", path, st.Version)
	}
	return st, nil
}

// saveState writes the state atomically: a temp file in the same directory,
// fsynced, then renamed over the old one, so a crash leaves either the old or
// the new state, never half of one.
func saveState(path string, st state) (err error) {
	st.Version = stateVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}
