package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/torrentclaw/cli/internal/atomicfile"
	"github.com/torrentclaw/cli/internal/ids"
	"github.com/torrentclaw/cli/internal/token"
)

// stateVersion is bumped when the state file's shape changes incompatibly.
const stateVersion = 1

// State file names in the data dir.
const (
	stateName       = "state.json"
	stateTempPrefix = ".state-"
	stateTempSuffix = ".json"
)

// state is what survives a restart: the tasks (how to add them again) and the hashes of
// their grants. Plain tokens are never written.
type state struct {
	Version int            `json:"version"`
	AgentID string         `json:"agentId,omitempty"`
	Tasks   []Record       `json:"tasks"`
	Tokens  []token.Record `json:"tokens"`
}

// Record is enough to add a task again after a restart.
type Record struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	// InfoHash is the 40-hex key of the torrent once known. A restart adds a task whose
	// metainfo came from a file or URL by this hash, from the metainfo saved in the data
	// dir: a .torrent URL is never fetched twice.
	InfoHash  string `json:"infoHash,omitempty"`
	FileIndex int    `json:"fileIndex"`
	Title     string `json:"title,omitempty"`
	Stream    bool   `json:"stream,omitempty"`
	Paused    bool   `json:"paused,omitempty"`
	FromOrig  bool   `json:"fromOrigin,omitempty"`
	// SeedPath is set for tasks made by Seed: they are seeded again from this file or
	// directory after a restart.
	SeedPath string    `json:"seedPath,omitempty"`
	AddedAt  time.Time `json:"addedAt"`
}

// Recovery describes what [LoadState] did about a state file it could not read.
type Recovery struct {
	// MovedTo is where the unreadable state file was moved ("" when it was fine).
	MovedTo string
	// Reason says what was wrong with it.
	Reason string
	// At is when it was moved.
	At time.Time
}

// Loaded is a state file as read at start.
type Loaded struct {
	AgentID  string
	Records  []Record
	Tokens   []token.Record
	Recovery Recovery
	// RemovedTemps counts stray temporary files of interrupted saves that were deleted.
	RemovedTemps int
}

// LoadState reads dataDir/state.json. A missing file is an empty state. A file that cannot
// be parsed (truncated, empty, garbage, unknown version) never keeps the daemon down: it is
// moved aside to state.json.corrupt-<time>, and the tasks are rebuilt from the metainfo
// files saved in dataDir/torrents (see [Loaded.Recovery]). Temporary files left by a save
// that was interrupted are removed.
func LoadState(dataDir string, now time.Time) (Loaded, error) {
	var ld Loaded
	ld.RemovedTemps = removeStrayTemps(dataDir)
	path := filepath.Join(dataDir, stateName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ld, nil
	}
	if err != nil {
		return ld, fmt.Errorf("read state: %w", err)
	}
	st, perr := parseState(b)
	if perr == nil {
		ld.AgentID, ld.Records, ld.Tokens = st.AgentID, st.Tasks, st.Tokens
		return ld, nil
	}
	moved := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	if err := os.Rename(path, moved); err != nil {
		return ld, fmt.Errorf("move corrupt state %s aside: %w", path, err)
	}
	ld.Recovery = Recovery{MovedTo: moved, Reason: perr.Error(), At: now}
	ld.Records = rebuildRecords(dataDir, now)
	return ld, nil
}

func parseState(b []byte) (state, error) {
	var st state
	if len(strings.TrimSpace(string(b))) == 0 {
		return st, errors.New("empty file")
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("not valid json: %w", err)
	}
	if st.Version != stateVersion {
		return st, fmt.Errorf("unsupported version %d", st.Version)
	}
	return st, nil
}

// strayTemps are the names temporary files of interrupted saves have: the
// atomic writer's, and the daemon's own before it used that writer.
var strayTemps = []string{"." + stateName + ".*.tmp", stateTempPrefix + "*" + stateTempSuffix}

// removeStrayTemps deletes the temporary files a crash during a save left behind.
func removeStrayTemps(dataDir string) int {
	n := 0
	for _, pat := range strayTemps {
		matches, _ := filepath.Glob(filepath.Join(dataDir, pat))
		for _, m := range matches {
			if os.Remove(m) == nil {
				n++
			}
		}
	}
	return n
}

// rebuildRecords makes a record for every metainfo file the engine saved in
// dataDir/torrents (<infohash>.torrent). The task IDs are the infohashes: the old IDs were in
// the lost file.
func rebuildRecords(dataDir string, now time.Time) []Record {
	matches, _ := filepath.Glob(filepath.Join(dataDir, "torrents", "*.torrent"))
	var out []Record
	for _, m := range matches {
		ih := strings.TrimSuffix(filepath.Base(m), ".torrent")
		if !isHex40(ih) {
			continue
		}
		out = append(out, Record{ID: ih, Source: ih, InfoHash: ih, FileIndex: -1, AddedAt: now.UTC()})
	}
	return out
}

func isHex40(s string) bool {
	h, ok := ids.ParseInfoHashV1(s)
	return ok && h == s
}

// saveState writes the state atomically (a temp file in the same directory, synced, then
// renamed over the old one), so a crash leaves either the old or the new state, never half
// of one. It runs on the service's saver goroutine, never on the path of a request.
func saveState(path string, st state) error {
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

// ReadAgentID returns the agent ID saved in dataDir's state file, or "" when there is none
// or the file cannot be read. It changes nothing on disk (doctor uses it with no daemon
// running).
func ReadAgentID(dataDir string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, stateName))
	if err != nil {
		return ""
	}
	st, err := parseState(b)
	if err != nil {
		return ""
	}
	return st.AgentID
}

// CorruptStateFiles lists the state files moved aside by earlier starts, for doctor.
func CorruptStateFiles(dataDir string) []string {
	m, _ := filepath.Glob(filepath.Join(dataDir, stateName+".corrupt-*"))
	return m
}
