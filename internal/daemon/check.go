package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/origin"
	"github.com/torrentclaw/cli/internal/tasks"
)

// originProbeTimeout bounds the offline origin check.
const originProbeTimeout = 3 * time.Second

// CheckOrigin tells whether the configured origin answers and accepts the
// API key, for `doctor` when no daemon is running. It never shows the key.
func CheckOrigin(ctx context.Context, cfg config.Config) control.Check {
	name := "origin"
	if cfg.Origin.APIURL == "" {
		return control.Check{Name: name, OK: true, Level: control.LevelOK, Detail: "not configured (standalone)"}
	}
	where := originOf(cfg.Origin.APIURL)
	agentID := cfg.Origin.AgentID
	if agentID == "" {
		// The ID a previous daemon generated, else one for this probe only.
		if id := tasks.ReadAgentID(cfg.Torrent.DataDir); id != "" {
			agentID = id
		} else {
			agentID = "doctor"
		}
	}
	c, err := origin.New(origin.Options{BaseURL: cfg.Origin.APIURL, APIKey: cfg.Origin.APIKey, AgentID: agentID})
	if err == nil {
		err = c.Probe(ctx, originProbeTimeout)
		c.CloseIdleConnections()
	}
	switch {
	case err == nil:
		return control.Check{Name: name, OK: true, Level: control.LevelOK, Detail: where + ": reachable, api key accepted"}
	case errors.Is(err, origin.ErrRevoked):
		return control.Check{Name: name, Level: control.LevelFail, Detail: where + ": the api key was rejected (check origin.api_key or TORRENTCLAW_API_KEY)"}
	default:
		return control.Check{Name: name, Level: control.LevelFail, Detail: where + ": " + err.Error()}
	}
}

// CheckSource reports a malformed magnet link before a daemon is started
// for it, with the same message the daemon would give. Other sources are
// checked when the task is added.
func CheckSource(source string) error {
	if !strings.HasPrefix(strings.ToLower(source), "magnet:") {
		return nil
	}
	if _, err := engine.ParseSource(source); err != nil {
		return fmt.Errorf("add task: %w", err)
	}
	return nil
}

// MagnetFinders reports whether source is a magnet link that names a tracker the engine
// can use (tr=) or a peer (x.pe=), as the engine parses it; false for anything else.
func MagnetFinders(source string) (trackers, peers bool) {
	src, err := engine.ParseSource(source)
	if err != nil || src.Kind != engine.SourceMagnet {
		return false, false
	}
	return len(src.Trackers) > 0, len(src.Peers) > 0
}

// CheckState reports, for doctor with no daemon running, the state files
// earlier starts found unreadable and moved aside (state.json.corrupt-<time>).
func CheckState(cfg config.Config) control.Check {
	moved := tasks.CorruptStateFiles(cfg.Torrent.DataDir)
	if len(moved) == 0 {
		return control.Check{Name: "state file", OK: true, Level: control.LevelOK, Detail: "no unreadable state file found"}
	}
	slices.Sort(moved)
	return control.Check{Name: "state file", OK: true, Level: control.LevelWarn, Detail: fmt.Sprintf(
		"%d unreadable state file(s) were moved aside at start, the newest to %s; the tasks were rebuilt from the saved metainfo (delete the file once you no longer need it)",
		len(moved), moved[len(moved)-1])}
}
