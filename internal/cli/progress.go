package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/daemon"
)

// progress draws a task's progress on w: on a terminal one line redrawn in
// place, never wider than the terminal (so it never wraps into stale lines);
// otherwise a plain line at most every plainEvery (and on every state
// change). It also prints, once, a hint when no peer can be found.
type progress struct {
	w        io.Writer
	terminal bool
	quiet    bool       // print nothing (--json without a terminal)
	width    func() int // terminal columns; <= 0 = unknown
	// hint explains why no peer is found; "" for no hint.
	hint func() string
	// hintAfter is how long a task must have no peer before the hint.
	hintAfter time.Duration
	now       func() time.Time // nil = time.Now; tests inject a clock

	drawn        bool // a line is on the current terminal line
	lastState    string
	lastLine     time.Time
	noPeersSince time.Time
	hinted       bool
}

// plainEvery spaces plain progress lines when stderr is not a terminal.
const plainEvery = 5 * time.Second

// defaultHintAfter is how long a task may find no peer before stream says why.
const defaultHintAfter = 10 * time.Second

// maxBarWidth is the widest progress bar drawn; narrower terminals get a
// shorter one, or none.
const maxBarWidth = 24

func (p *progress) update(info control.TaskInfo) {
	if p.quiet {
		return
	}
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	p.maybeHint(info, now())
	if p.terminal {
		fmt.Fprintf(p.w, "\r\x1b[K%s", fitLine(info, p.columns()))
		p.drawn = true
		return
	}
	if info.StreamReady {
		return // the plain display ends at "ready"
	}
	t := now()
	if info.State == p.lastState && t.Sub(p.lastLine) < plainEvery {
		return
	}
	p.lastState, p.lastLine = info.State, t
	fmt.Fprintln(p.w, progressLine(info, 0))
}

// columns is the usable width: one less than the terminal, so the cursor
// never moves to the next line.
func (p *progress) columns() int {
	w := 0
	if p.width != nil {
		w = p.width()
	}
	if w <= 0 {
		w = 80
	}
	return max(w-1, 10)
}

// maybeHint prints the hint once when the task has had no peer, connected
// or known, for hintAfter while it still needs data.
func (p *progress) maybeHint(info control.TaskInfo, now time.Time) {
	searching := info.State == "resolving" || info.State == "downloading"
	if p.hinted || p.hint == nil || !searching || info.Peers > 0 || info.KnownPeers > 0 {
		p.noPeersSince = time.Time{}
		return
	}
	if p.noPeersSince.IsZero() {
		p.noPeersSince = now
	}
	if now.Sub(p.noPeersSince) < p.hintAfter {
		return
	}
	p.hinted = true
	if h := p.hint(); h != "" {
		p.clear()
		fmt.Fprintf(p.w, "hint: %s\n", h)
	}
}

// clear removes the line drawn on the terminal.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
}

// finish clears the line and says whether the file is playable.
func (p *progress) finish(info control.TaskInfo, err error) {
	p.clear()
	if err != nil || p.quiet {
		return
	}
	name := info.FileName
	if name == "" {
		name = info.Name
	}
	fmt.Fprintf(p.w, "ready: %s is playable (%.1f%% downloaded)\n", name, info.Progress)
}

// fitLine renders the progress line in at most width columns: a bar when
// there is room for one, a compact form (peers first) when the full one does
// not fit, and the text cut at the end as a last resort.
func fitLine(info control.TaskInfo, width int) string {
	text := progressLine(info, 0)
	if n := len([]rune(text)); n > width {
		text = compactLine(info)
	} else if info.State != "resolving" && info.TotalBytes > 0 {
		if room := width - n - 3; room >= 8 {
			text = progressLine(info, min(room, maxBarWidth))
		}
	}
	return truncate(text, width)
}

// compactLine is the progress line for narrow terminals, most useful first.
func compactLine(info control.TaskInfo) string {
	peers := fmt.Sprintf("peers %d/%d", info.Peers, max(info.KnownPeers, info.Peers))
	switch info.State {
	case "queued", "paused":
		return info.State
	}
	if info.State == "resolving" || info.TotalBytes == 0 {
		return "resolving, " + peers
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%.0f%% %s ↓%s/s ↑%s/s", info.Progress, peers, compactBytes(info.SpeedBps), compactBytes(info.UploadSpeedBps))
	switch {
	case info.BufferedSeconds >= 1:
		fmt.Fprintf(&b, " buf %s", formatETA(int64(info.BufferedSeconds)))
	case info.BufferedBytes > 0:
		fmt.Fprintf(&b, " buf %s", compactBytes(info.BufferedBytes))
	}
	return b.String()
}

// compactBytes is formatBytes without the space and "iB": "1.5G", "300K".
func compactBytes(n int64) string {
	s := formatBytes(n)
	s = strings.TrimSuffix(strings.Replace(s, " ", "", 1), "iB")
	return strings.TrimSuffix(s, "B")
}

// progressLine renders one status line; with bar > 0, a text progress bar
// of that many cells in front.
func progressLine(info control.TaskInfo, bar int) string {
	peers := fmt.Sprintf("peers %d/%d", info.Peers, max(info.KnownPeers, info.Peers))
	switch {
	case info.State == "queued":
		return "queued: waiting for a free slot (torrent.max_active)…"
	case info.State == "paused":
		return "paused: 'torrentclaw resume " + info.ID + "' continues"
	case info.State == "resolving" || info.TotalBytes == 0:
		return "resolving metadata (finding peers), " + peers
	}
	var b strings.Builder
	if bar > 0 {
		filled := min(max(int(info.Progress/100*float64(bar)), 0), bar)
		b.WriteString("[" + strings.Repeat("#", filled) + strings.Repeat("-", bar-filled) + "] ")
	}
	state := info.State
	if info.StreamReady && state == "downloading" {
		state = "playable"
	}
	fmt.Fprintf(&b, "%s %.1f%% of %s at %s/s, up %s/s, %s", state, info.Progress, formatBytes(info.TotalBytes),
		formatBytes(info.SpeedBps), formatBytes(info.UploadSpeedBps), peers)
	switch {
	case info.BufferedSeconds >= 1:
		fmt.Fprintf(&b, ", %s buffered", formatETA(int64(info.BufferedSeconds)))
	case info.BufferedBytes > 0:
		fmt.Fprintf(&b, ", %s buffered", formatBytes(info.BufferedBytes))
	}
	if info.Progress < 100 {
		fmt.Fprintf(&b, ", eta %s", formatETA(info.ETASeconds))
	}
	return b.String()
}

// terminalWidth returns w's terminal width in columns, 0 when unknown.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}

// noPeerHint explains why a task finds no peer, from the config and the
// source: with the DHT off, no trackers and no peer address in the magnet,
// nothing can find one.
func noPeerHint(cfg config.Config, source string) string {
	tr, pe := daemon.MagnetFinders(source)
	if !cfg.Torrent.DHT && len(cfg.Torrent.Trackers) == 0 && !tr && !pe {
		return "no peer can be found: the DHT is off (torrent.dht), no trackers are set (torrent.trackers, or tr= in the magnet) " +
			"and the magnet names no peer (x.pe=); turn one of them on"
	}
	return "no peers found yet: the torrent may have no seeders, or outgoing connections may be blocked"
}

// keepReporting redraws the task's line every interval until ctx is done
// (Ctrl-C), so the player's buffer and the swarm stay visible after "ready".
func keepReporting(ctx context.Context, client *control.Client, id string, interval time.Duration, bar *progress) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			bar.clear()
			return nil
		case <-tick.C:
		}
		info, err := client.Task(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				bar.clear()
				return nil
			}
			bar.clear()
			return err
		}
		bar.update(info)
	}
}
