package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/daemon"
)

// defaultPollInterval is how often stream asks the daemon for progress.
const defaultPollInterval = 500 * time.Millisecond

// defaultResolveTimeout is how long stream waits for a torrent's metadata.
const defaultResolveTimeout = 3 * time.Minute

type streamOptions struct {
	Out, Err    io.Writer
	Client      func() (*control.Client, error)
	StartDaemon func(context.Context) (*control.Client, func() error, error)
	LookPath    func(string) (string, error)
	StartPlayer func(path string, args ...string) error
	Terminal    bool       // Err is a terminal: draw a live progress line, and keep it after "ready"
	Width       func() int // Err's width in columns; nil or <= 0 = unknown
	LoadConfig  func() (config.Config, string, error)
	// HintAfter is how long a task may find no peer before the hint.
	HintAfter time.Duration
	// PollInterval is how often progress is fetched; tests shorten it.
	PollInterval time.Duration
	// ResolveTimeout bounds the wait for the torrent's metadata (a wrong
	// magnet never resolves); 0 waits forever.
	ResolveTimeout time.Duration

	Source    string
	FileIndex int // -1 = largest video
	Title     string
	HLS       bool
	JSON      bool
	Open      string // "" = none; vlc, mpv, iina or browser
	// Audio and Subs pick the HLS session's default renditions; BurnSubs
	// burns an image subtitle track into its video.
	Audio, Subs string
	BurnSubs    bool
}

func newStreamCmd(env *Env, runF func(*streamOptions) error) *cobra.Command {
	opts := &streamOptions{
		Out:          env.Out,
		Err:          env.Err,
		Client:       env.Client,
		StartDaemon:  env.StartDaemon,
		LookPath:     env.LookPath,
		StartPlayer:  env.StartPlayer,
		PollInterval: defaultPollInterval,
		LoadConfig:   env.LoadConfig,
		HintAfter:    defaultHintAfter,
		Width:        func() int { return terminalWidth(env.Err) },
	}
	cmd := &cobra.Command{
		Use:   "stream <magnet|infohash|file.torrent|http(s) URL>",
		Short: "Stream a torrent while it downloads and print its URLs",
		Long: `Add a torrent to the running daemon (or, when none runs, to one started in
this process), mint its stream token, and print the stream and playlist URLs
(and with --hls the HLS URL) on stdout. Progress goes to stderr until the
file is playable: peers (connected/known), download and upload speed, and how
much of the file is verified ahead of the player. On a terminal the line stays
after the file is playable, until Ctrl-C. When no peer turns up, a hint says
why (for example the DHT is off and the magnet names no tracker or peer).

Without a terminal, with a daemon already running, stream exits once the file
is playable and the daemon keeps serving; with an in-process daemon, stream
keeps serving until Ctrl-C.

--json prints one line, {"taskId","token","streamUrl","playlistUrl"} (plus
"hlsUrl" with --hls), as soon as the task is added, then behaves as above:
exits once playable, or keeps serving until Ctrl-C with an in-process daemon.`,
		Example: `  torrentclaw stream 'magnet:?xt=urn:btih:…' --open
  torrentclaw stream movie.torrent --file 2
  torrentclaw stream 0123456789abcdef0123456789abcdef01234567 --json`,
		Args: exactArgs(1, "one source"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Source = args[0]
			if opts.Open != "" && !slices.Contains(players, opts.Open) {
				return usageErrorf(cmd, "--open %q: want one of %s", opts.Open, strings.Join(players, ", "))
			}
			if opts.FileIndex < -1 {
				return usageErrorf(cmd, "--file must be a file index, or -1 for the largest video")
			}
			if !opts.HLS && (opts.Audio != "" || opts.Subs != "" || opts.BurnSubs) {
				return usageErrorf(cmd, "--audio, --subs and --burn-subs choose tracks of the HLS session: add --hls")
			}
			for _, l := range []string{opts.Audio, opts.Subs} {
				if len(l) > 35 || strings.ContainsAny(l, " \t\r\n\"") {
					return usageErrorf(cmd, "%q is not a language (use a code like en, spa or pt-BR)", l)
				}
			}
			opts.Terminal = env.IsTerminal(env.Err)
			if runF != nil {
				return runF(opts)
			}
			return runStream(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.FileIndex, "file", -1, "index of the file to stream (-1: the largest video)")
	f.StringVar(&opts.Title, "title", "", "title for the task (default: the torrent's name)")
	f.BoolVar(&opts.HLS, "hls", false, "also start an HLS session (for browsers that cannot play the file)")
	f.StringVar(&opts.Audio, "audio", "", "with --hls: default audio language (BCP 47 or ISO 639, e.g. spa, en-US)")
	f.StringVar(&opts.Subs, "subs", "", "with --hls: default subtitle language (BCP 47 or ISO 639, e.g. en)")
	f.BoolVar(&opts.BurnSubs, "burn-subs", false, "with --hls: burn an image subtitle track (PGS, VobSub) into the video")
	f.BoolVar(&opts.JSON, "json", false, "print the task ID, token and URLs as JSON")
	f.StringVar(&opts.Open, "open", "", "once playable, open it in vlc (the default for a bare --open), mpv or iina; browser opens the player page at once (it says what it waits for)")
	f.Lookup("open").NoOptDefVal = "vlc"
	_ = cmd.RegisterFlagCompletionFunc("open", cobra.FixedCompletions(players, cobra.ShellCompDirectiveNoFileComp))
	f.DurationVar(&opts.ResolveTimeout, "resolve-timeout", defaultResolveTimeout, "give up when no peer sent the torrent's metadata within this time (0: wait forever)")
	return cmd
}

// streamJSON is stream's --json output. Its shape is a contract.
type streamJSON struct {
	TaskID      string `json:"taskId"`
	Token       string `json:"token"`
	StreamURL   string `json:"streamUrl"`
	PlaylistURL string `json:"playlistUrl"`
	HLSURL      string `json:"hlsUrl,omitempty"`
}

func runStream(ctx context.Context, opts *streamOptions) (err error) {
	source, err := normalizeSource(opts.Source)
	if err != nil {
		return err
	}
	var player string
	if opts.Open != "" { // fail before adding anything
		if player, err = findOpener(opts.Open, opts.LookPath); err != nil {
			return err
		}
	}
	c, err := connect(ctx, opts.Client, opts.StartDaemon, opts.Err)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.close()) }()

	added, err := c.client.AddTask(ctx, control.AddRequest{
		Source:    source,
		FileIndex: opts.FileIndex,
		HLS:       opts.HLS,
		Title:     opts.Title,

		AudioLanguage:    opts.Audio,
		SubtitleLanguage: opts.Subs,
		BurnSubtitles:    opts.BurnSubs,
	})
	if err != nil {
		return err
	}
	if added.Existing {
		fmt.Fprintf(opts.Err, "already a task (%s): a new token was added for it; the URLs handed out before keep working\n", added.TaskID)
	}
	if opts.JSON {
		out := streamJSON{
			TaskID:      added.TaskID,
			Token:       added.Token.Reveal(),
			StreamURL:   added.StreamURL,
			PlaylistURL: added.PlaylistURL,
		}
		if opts.HLS {
			out.HLSURL = added.HLSURL
		}
		if err := writeJSONLine(opts.Out, out); err != nil {
			return err
		}
	} else {
		urls := fmt.Sprintf("task      %s\nstream    %s\nplaylist  %s\n", added.TaskID, added.StreamURL, added.PlaylistURL)
		if opts.HLS {
			urls += fmt.Sprintf("hls       %s\n", added.HLSURL)
		}
		if _, err := io.WriteString(opts.Out, urls); err != nil {
			return err
		}
		if !added.ExpiresAt.IsZero() {
			fmt.Fprintf(opts.Err, "the token in these URLs expires at %s\n", formatTime(added.ExpiresAt))
		}
	}

	// The player page says itself what it waits for (peers, the
	// metadata, the file's head) and starts by itself: opening it now lets
	// the browser start while the torrent does. Other players open once
	// the file is playable.
	opened := false
	if player != "" && opts.Open == "browser" {
		if err := openIn(opts.StartPlayer, opts.Open, player, added.StreamURL, added.PlaylistURL); err != nil {
			return err
		}
		opened = true
	}
	bar := &progress{w: opts.Err, terminal: opts.Terminal, quiet: opts.JSON && !opts.Terminal,
		width: opts.Width, hint: opts.hint(source), hintAfter: opts.HintAfter}
	info, err := pollUntilPlayable(ctx, c.client, added.TaskID, opts.PollInterval, opts.ResolveTimeout, bar.update)
	bar.finish(info, err)
	if err != nil {
		if errors.Is(err, errNoMetadata) && !c.local {
			return fmt.Errorf("%w; the task stays in the daemon ('torrentclaw status'), 'torrentclaw rm %s' removes it", err, added.TaskID)
		}
		return err
	}
	if player != "" && !opened {
		if err := openIn(opts.StartPlayer, opts.Open, player, added.StreamURL, added.PlaylistURL); err != nil {
			return err
		}
	}
	if opts.Terminal && !opts.JSON {
		// Keep the swarm and the buffer visible while the video plays.
		if c.local {
			fmt.Fprintln(opts.Err, "serving until Ctrl-C")
		} else {
			fmt.Fprintln(opts.Err, "the daemon keeps serving it; Ctrl-C ends this display, not the stream")
		}
		return keepReporting(ctx, c.client, added.TaskID, opts.PollInterval, bar)
	}
	if !c.local {
		fmt.Fprintln(opts.Err, "the daemon keeps serving it; 'torrentclaw status' shows progress")
		return nil
	}
	fmt.Fprintln(opts.Err, "serving until Ctrl-C")
	<-ctx.Done()
	return nil
}

// hint returns the no-peer hint for source, from the config (nil when the
// config cannot be read: no hint then).
func (o *streamOptions) hint(source string) func() string {
	if o.LoadConfig == nil {
		return nil
	}
	return func() string {
		cfg, _, err := o.LoadConfig()
		if err != nil {
			return ""
		}
		return noPeerHint(cfg, source)
	}
}

// errNoMetadata reports a torrent whose metadata never arrived.
var errNoMetadata = errors.New("no metadata")

// pollUntilPlayable polls the task until its file is playable, it fails, it
// stays resolving for resolveTimeout (when > 0), or ctx is done, reporting
// each status to report.
func pollUntilPlayable(ctx context.Context, client *control.Client, id string, interval, resolveTimeout time.Duration, report func(control.TaskInfo)) (control.TaskInfo, error) {
	if interval <= 0 {
		interval = defaultPollInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var resolvingSince time.Time
	for {
		info, err := client.Task(ctx, id)
		if err != nil {
			return info, err
		}
		report(info)
		if info.State == "resolving" {
			if resolvingSince.IsZero() {
				resolvingSince = time.Now()
			}
		} else {
			resolvingSince = time.Time{}
		}
		switch {
		case info.StreamReady:
			return info, nil
		case resolveTimeout > 0 && !resolvingSince.IsZero() && time.Since(resolvingSince) >= resolveTimeout:
			return info, fmt.Errorf("task %s: %w after %s: no peer sent the torrent's metadata (a wrong magnet or info hash, or no seeders)",
				id, errNoMetadata, resolveTimeout)
		case info.State == "failed":
			msg := info.Error
			if msg == "" {
				msg = "no reason given"
			}
			return info, fmt.Errorf("task %s failed: %s", id, msg)
		}
		select {
		case <-ctx.Done():
			return info, ctx.Err()
		case <-tick.C:
		}
	}
}

// normalizeSource checks the shape of a source and turns a local .torrent
// path into an absolute one, since the daemon may run in another directory.
// Magnets, infohashes and URLs are passed on for the daemon to validate.
func normalizeSource(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("source is empty: give a magnet link, an infohash, a .torrent file or its URL")
	}
	lower := strings.ToLower(s)
	if err := daemon.CheckSource(s); err != nil {
		return "", err
	}
	if strings.HasPrefix(lower, "magnet:") || strings.HasPrefix(lower, "http://") ||
		strings.HasPrefix(lower, "https://") || isInfoHash(s) {
		return s, nil
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return "", fmt.Errorf("source %q: %w", s, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("source %q: not a magnet link, infohash or http(s) URL, and no such file", s)
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already quoted in front
		}
		return "", fmt.Errorf("source %q: %w", s, err)
	case fi.IsDir():
		return "", fmt.Errorf("source %q is a directory (to share files, use: torrentclaw seed)", s)
	}
	return abs, nil
}

// isInfoHash reports whether s is a 40-hex (v1) or 64-hex (v2) infohash.
func isInfoHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// findPlayer returns VLC's path: vlc or cvlc on PATH, or the macOS app.
func findPlayer(lookPath func(string) (string, error)) (string, error) {
	names := []string{"vlc", "cvlc"}
	if runtime.GOOS == "darwin" {
		names = append(names, "/Applications/VLC.app/Contents/MacOS/VLC")
	}
	for _, n := range names {
		if p, err := lookPath(n); err == nil {
			return p, nil
		}
	}
	return "", errors.New("--open: VLC not found (looked for vlc and cvlc on PATH); install VLC or open the playlist URL in any player")
}
