package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/torrentclaw/cli/internal/control"
)

// writeJSON writes v as indented JSON and a newline. URLs keep their "&"
// (no HTML escaping): the output is for scripts and terminals, not HTML.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// writeJSONLine writes v as one line of JSON, for commands that keep running
// after printing (a script can read the first line).
func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// formatTime formats t in local time for humans.
func formatTime(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// formatBytes formats n bytes with binary units: "1.5 GiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatETA formats a number of seconds as "1h02m", "3m20s" or "45s"; "-"
// when unknown.
func formatETA(secs int64) string {
	if secs <= 0 {
		return "-"
	}
	d := time.Duration(secs) * time.Second
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

// tokenSummary describes a task's grants without showing a token: "2 grants,
// next expiry …", "locked (revoked)", "expired", "none".
func tokenSummary(t control.TokenInfo) string {
	switch {
	case t.Locked:
		return "locked (revoked): 'token issue' opens it"
	case t.Grants > 0 || t.Set:
		n := max(t.Grants, 1)
		s := fmt.Sprintf("%d grant", n)
		if n > 1 {
			s += "s"
		}
		next := t.NextExpiry
		if next.IsZero() {
			next = t.ExpiresAt
		}
		if !next.IsZero() {
			s += ", next expiry " + formatTime(next)
		}
		return s
	case t.EverGranted:
		return "expired: 'token issue' opens it"
	}
	return "none"
}

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}

// progress draws a task's download progress on w: a live bar redrawn in
// place on a terminal, else a plain line at most every plainEvery (and on
// every state change).
type progress struct {
	w        io.Writer
	terminal bool
	quiet    bool // print nothing (--json without a terminal)

	drawn     bool // a bar is on the current terminal line
	lastState string
	lastLine  time.Time
}

// plainEvery spaces plain progress lines when stderr is not a terminal.
const plainEvery = 5 * time.Second

const barWidth = 24

func (p *progress) update(info control.TaskInfo) {
	if p.quiet || info.StreamReady {
		return
	}
	if p.terminal {
		fmt.Fprintf(p.w, "\r\x1b[K%s", progressLine(info, true))
		p.drawn = true
		return
	}
	now := time.Now()
	if info.State == p.lastState && now.Sub(p.lastLine) < plainEvery {
		return
	}
	p.lastState, p.lastLine = info.State, now
	fmt.Fprintln(p.w, progressLine(info, false))
}

// finish clears the bar and says whether the file is playable.
func (p *progress) finish(info control.TaskInfo, err error) {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
	if err != nil || p.quiet {
		return
	}
	name := info.FileName
	if name == "" {
		name = info.Name
	}
	fmt.Fprintf(p.w, "ready: %s is playable (%.1f%% downloaded)\n", name, info.Progress)
}

// progressLine renders one status line; with bar, a text progress bar.
func progressLine(info control.TaskInfo, bar bool) string {
	switch {
	case info.State == "queued":
		return "queued: waiting for a free slot (torrent.max_active)…"
	case info.State == "paused":
		return "paused: 'torrentclaw resume " + info.ID + "' continues"
	case info.State == "resolving" || info.TotalBytes == 0:
		return "resolving metadata (finding peers)…"
	}
	size, speed, eta := formatBytes(info.TotalBytes), formatBytes(info.SpeedBps), formatETA(info.ETASeconds)
	if !bar {
		return fmt.Sprintf("%s %.1f%% of %s at %s/s, eta %s", info.State, info.Progress, size, speed, eta)
	}
	filled := min(max(int(info.Progress/100*barWidth), 0), barWidth)
	var b strings.Builder
	b.WriteString("[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "] ")
	fmt.Fprintf(&b, "%5.1f%% of %s  %s/s  eta %s", info.Progress, size, speed, eta)
	return b.String()
}
