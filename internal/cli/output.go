package cli

import (
	"encoding/json"
	"fmt"
	"io"
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
