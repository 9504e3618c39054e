package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/control"
)

// taskOptions are the options of the verbs that act on one task: rm, pause,
// resume.
type taskOptions struct {
	Err    io.Writer
	Client func() (*control.Client, error)

	TaskID      string
	DeleteFiles bool // rm only
}

func newRmCmd(env *Env, runF func(*taskOptions) error) *cobra.Command {
	opts := &taskOptions{Err: env.Err, Client: env.Client}
	cmd := &cobra.Command{
		Use:   "rm <taskID>",
		Short: "Remove a task: its URLs stop working, its HLS sessions close",
		Long: `Remove a task from the running daemon: its stream, playlist and HLS URLs
answer 404 at once, its HLS sessions close, and it is not restored at the
next start. The downloaded files stay unless --delete-files is given.`,
		Example: `  torrentclaw rm 6f1c2f0e-…
  torrentclaw rm 6f1c2f0e-… --delete-files`,
		Args: exactArgs(1, "one task ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.TaskID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runRm(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.DeleteFiles, "delete-files", false, "also delete the task's downloaded files")
	return cmd
}

func runRm(ctx context.Context, opts *taskOptions) error {
	client, err := runningClient(ctx, opts.Client)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.RemoveTask(ctx, opts.TaskID, opts.DeleteFiles); err != nil {
		return fmt.Errorf("remove task: %w", err)
	}
	what := "its files stay on disk"
	if opts.DeleteFiles {
		what = "its files were deleted"
	}
	_, err = fmt.Fprintf(opts.Err, "removed task %s; %s\n", opts.TaskID, what)
	return err
}

func newPauseCmd(env *Env, runF func(*taskOptions) error) *cobra.Command {
	opts := &taskOptions{Err: env.Err, Client: env.Client}
	return &cobra.Command{
		Use:   "pause <taskID>",
		Short: "Stop a task's transfers (it stays paused across restarts)",
		Args:  exactArgs(1, "one task ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.TaskID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runSetPaused(cmd.Context(), opts, true)
		},
	}
}

func newResumeCmd(env *Env, runF func(*taskOptions) error) *cobra.Command {
	opts := &taskOptions{Err: env.Err, Client: env.Client}
	return &cobra.Command{
		Use:   "resume <taskID>",
		Short: "Restart a paused task's transfers (also retries a task stopped by a full disk)",
		Args:  exactArgs(1, "one task ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.TaskID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runSetPaused(cmd.Context(), opts, false)
		},
	}
}

func runSetPaused(ctx context.Context, opts *taskOptions, paused bool) error {
	client, err := runningClient(ctx, opts.Client)
	if err != nil {
		return err
	}
	defer client.Close()
	verb, done := "resume", "resumed"
	if paused {
		verb, done = "pause", "paused"
		err = client.PauseTask(ctx, opts.TaskID)
	} else {
		err = client.ResumeTask(ctx, opts.TaskID)
	}
	if err != nil {
		return fmt.Errorf("%s task: %w", verb, err)
	}
	_, err = fmt.Fprintf(opts.Err, "%s task %s\n", done, opts.TaskID)
	return err
}

type filesOptions struct {
	Out    io.Writer
	Client func() (*control.Client, error)

	TaskID string
	JSON   bool
}

func newFilesCmd(env *Env, runF func(*filesOptions) error) *cobra.Command {
	opts := &filesOptions{Out: env.Out, Client: env.Client}
	cmd := &cobra.Command{
		Use:   "files <taskID>",
		Short: "List a task's files: index, size, playable, audio and subtitle tracks",
		Long: `List the files of a task once its metadata is known: the index to pass to
'torrentclaw stream --file', the size, whether it plays as video, and its
audio and subtitle tracks once an HLS session has probed it.`,
		Args: exactArgs(1, "one task ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.TaskID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runFiles(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the files as JSON")
	return cmd
}

func runFiles(ctx context.Context, opts *filesOptions) error {
	client, err := runningClient(ctx, opts.Client)
	if err != nil {
		return err
	}
	defer client.Close()
	ti, err := client.Task(ctx, opts.TaskID)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	if opts.JSON {
		files := ti.Files
		if files == nil {
			files = []control.FileInfo{}
		}
		return writeJSON(opts.Out, files)
	}
	if len(ti.Files) == 0 {
		return fmt.Errorf("files: task %s has no metadata yet (state %s); try again once it has", ti.ID, ti.State)
	}
	return printFiles(opts.Out, ti)
}

// printFiles writes a task's files for humans, the selected one marked,
// then each playable file's tracks.
func printFiles(w io.Writer, ti control.TaskInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tSIZE\tPLAYABLE\tHLS\tTRACKS\tNAME")
	for _, f := range ti.Files {
		mark := ""
		if f.Index == ti.FileIndex {
			mark = " (selected)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s%s\n", f.Index, formatBytes(f.Length), yesNo(f.Playable),
			fileMode(f, ti.HLS), tracksSummary(f.Tracks), f.Path, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range ti.Files {
		if !f.Playable || len(f.Tracks) == 0 && f.Probed {
			continue
		}
		fmt.Fprintf(w, "\n%d %s\n", f.Index, f.Path)
		if !f.Probed {
			fmt.Fprintln(w, "  audio and embedded subtitles: not probed yet (open it with stream --hls or /watch)")
		}
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, tr := range f.Tracks {
			fmt.Fprintf(tw, "  %s %d\t%s\t%s\t%s\n", tr.Kind, tr.Index, orDash(tr.Language), orDash(tr.Codec), trackDetail(tr))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// fileMode says how HLS plays a file: the mode of its open sessions (with
// "live" when one is running) or of its last probe, "probing", or "-".
func fileMode(f control.FileInfo, sessions []control.HLSInfo) string {
	mode, live := f.Mode, 0
	for _, s := range sessions {
		if s.FileIndex != f.Index {
			continue
		}
		live++
		switch {
		case s.Mode != "" && s.BurntSubtitles:
			mode = s.Mode + " (subtitles burnt in)"
		case s.Mode != "":
			mode = s.Mode
		case mode == "":
			mode = s.State
		}
	}
	switch {
	case mode == "":
		return "-"
	case live > 0:
		return fmt.Sprintf("%s (%d open)", mode, live)
	}
	return mode
}

// trackDetail describes one track: what HLS does with it.
func trackDetail(tr control.TrackInfo) string {
	var parts []string
	switch {
	case tr.Kind == "audio" && tr.Copy:
		parts = append(parts, fmt.Sprintf("%d ch, copied", tr.Channels))
	case tr.Kind == "audio":
		parts = append(parts, fmt.Sprintf("re-encoded to AAC %d ch", tr.Channels))
	case tr.Image && tr.Burnt:
		parts = append(parts, "image, burnt into the video")
	case tr.Image:
		parts = append(parts, "image: burn-in only (stream --hls --burn-subs)")
	default:
		parts = append(parts, "text")
	}
	if tr.Sidecar {
		parts = append(parts, fmt.Sprintf("sidecar file %d", tr.File))
	}
	if tr.Default {
		parts = append(parts, "default")
	}
	if tr.Title != "" {
		parts = append(parts, fmt.Sprintf("%q", tr.Title))
	}
	return strings.Join(parts, ", ")
}

// tracksSummary is "2 audio (en, fr), 3 subtitle (en, fr, en image)", or
// "-" when none is known.
func tracksSummary(tracks []control.TrackInfo) string {
	if len(tracks) == 0 {
		return "-"
	}
	var parts []string
	for _, kind := range []string{"audio", "subtitle"} {
		n := 0
		var langs []string
		for _, tr := range tracks {
			if tr.Kind != kind {
				continue
			}
			n++
			l := tr.Language
			if l == "" {
				l = "?"
			}
			if tr.Image {
				l += " image"
			}
			langs = append(langs, l)
		}
		if n == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", n, kind, strings.Join(langs, ", ")))
	}
	return strings.Join(parts, ", ")
}
