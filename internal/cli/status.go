package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/control"
)

type statusOptions struct {
	Out      io.Writer
	Client   func() (*control.Client, error)
	Terminal bool // Out is a terminal: --watch redraws the screen

	JSON  bool
	Watch time.Duration // 0 = print once
}

func newStatusCmd(env *Env, runF func(*statusOptions) error) *cobra.Command {
	opts := &statusOptions{Out: env.Out, Client: env.Client}
	var watch bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon and its tasks",
		Long: `Show the running daemon (version, media URLs, origin, UPnP) and its tasks
with their state (queued, resolving, downloading, paused, seeding, completed,
failed), progress, speeds, upload and peers (connected/known); --watch redraws
it every --interval until Ctrl-C. Tokens are never shown: a task's grants are
reported as "2 grants, next expiry …", "locked (revoked)" or "expired". Fails
when no daemon is running.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if watch && opts.Watch <= 0 {
				opts.Watch = 2 * time.Second
			}
			if !watch {
				opts.Watch = 0
			}
			if opts.Watch > 0 && opts.JSON {
				return usageErrorf(cmd, "--watch and --json do not go together")
			}
			opts.Terminal = env.IsTerminal(env.Out)
			if runF != nil {
				return runF(opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status as JSON")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh the table until Ctrl-C")
	cmd.Flags().DurationVar(&opts.Watch, "interval", 2*time.Second, "how often --watch refreshes")
	return cmd
}

func runStatus(ctx context.Context, opts *statusOptions) error {
	client, err := runningClient(ctx, opts.Client)
	if err != nil {
		return err
	}
	defer client.Close()
	st, err := client.Status(ctx)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(opts.Out, st)
	}
	if opts.Watch <= 0 {
		return printStatus(opts.Out, st, time.Now())
	}
	tick := time.NewTicker(opts.Watch)
	defer tick.Stop()
	for {
		var b strings.Builder
		if opts.Terminal {
			b.WriteString("\x1b[H\x1b[2J") // home, clear: the table is redrawn in place
		}
		if err := printStatus(&b, st, time.Now()); err != nil {
			return err
		}
		if !opts.Terminal {
			b.WriteString("\n")
		}
		if _, err := io.WriteString(opts.Out, b.String()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if st, err = client.Status(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// printStatus writes st for humans.
func printStatus(w io.Writer, st control.StatusResponse, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "daemon\trunning, version %s, pid %d\n", st.Version, st.PID)
	media := "-"
	if len(st.MediaURLs) > 0 {
		media = strings.Join(st.MediaURLs, ", ")
	}
	fmt.Fprintf(tw, "media\t%s\n", media)
	tokens := "optional: tasks without a token are served to anyone who can reach the media port"
	if st.RequireStreamToken {
		tokens = "required for every task"
	}
	fmt.Fprintf(tw, "tokens\t%s\n", tokens)
	fmt.Fprintf(tw, "origin\t%s\n", originSummary(st.Origin, now))
	fmt.Fprintf(tw, "upnp\t%s\n", orDash(st.UPnP))
	if st.HLS != "" {
		fmt.Fprintf(tw, "hls\t%s\n", st.HLS)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if len(st.Tasks) == 0 {
		_, err := fmt.Fprintln(w, "no tasks")
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tPROGRESS\tSPEED\tUP\tPEERS\tETA\tPLAYABLE\tHLS\tTOKENS\tNAME")
	for _, t := range st.Tasks {
		state := t.State
		switch {
		case t.Error != "":
			state += ": " + truncate(t.Error, 40)
		case t.Notice != "":
			state += " (" + truncate(t.Notice, 40) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f%% of %s\t%s/s\t%s/s (%s)\t%d/%d\t%s\t%s\t%s\t%s\t%s\n",
			t.ID, state, t.Progress, formatBytes(t.TotalBytes), formatBytes(t.SpeedBps),
			formatBytes(t.UploadSpeedBps), formatBytes(t.UploadedBytes), t.Peers, max(t.KnownPeers, t.Peers),
			formatETA(t.ETASeconds), yesNo(t.StreamReady), hlsSummary(t.HLS), tokenSummary(t.Token), orDash(truncate(taskName(t), 60)))
	}
	return tw.Flush()
}

// hlsSummary lists a task's open HLS sessions by mode: "copy",
// "transcode, probing", "2× copy"; "-" when none is open.
func hlsSummary(sessions []control.HLSInfo) string {
	if len(sessions) == 0 {
		return "-"
	}
	var order []string
	count := map[string]int{}
	for _, s := range sessions {
		what := s.Mode
		if what == "" {
			what = s.State
		}
		if s.BurntSubtitles {
			what += " (subtitles burnt in)"
		}
		if count[what] == 0 {
			order = append(order, what)
		}
		count[what]++
	}
	for i, what := range order {
		if n := count[what]; n > 1 {
			order[i] = fmt.Sprintf("%d× %s", n, what)
		}
	}
	return strings.Join(order, ", ")
}

// originSummary describes the origin link on one line.
func originSummary(o control.OriginStatus, now time.Time) string {
	if !o.Configured {
		return "not configured (standalone)"
	}
	var b strings.Builder
	b.WriteString(orDash(o.URL))
	if o.State != "" {
		b.WriteString(": " + o.State)
	}
	if !o.LastSync.IsZero() {
		fmt.Fprintf(&b, ", last sync %s ago", now.Sub(o.LastSync).Round(time.Second))
	}
	if o.LastError != "" {
		b.WriteString(", last error: " + o.LastError)
	}
	return b.String()
}

func taskName(t control.TaskInfo) string {
	if t.Name != "" {
		return t.Name
	}
	return t.FileName
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
