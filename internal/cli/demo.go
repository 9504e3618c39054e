package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/daemon"
	"github.com/torrentclaw/cli/internal/sample"
)

// demoCheckBytes is how much of the file the demo fetches through /stream
// and compares with the original before it prints the URLs.
const demoCheckBytes = 256 << 10

type demoOptions struct {
	Out, Err io.Writer
	Version  string

	File string        // the video to seed; "" = the embedded sample
	Port int           // media listener port on 127.0.0.1
	Dir  string        // where the demo keeps its state; "" = a temp dir removed at exit
	Wait time.Duration // how long to wait for the stream to become playable
	// Once makes the demo stop after the check instead of serving until
	// Ctrl-C (for scripts and tests).
	Once bool
}

func newDemoCmd(env *Env, runF func(*demoOptions) error) *cobra.Command {
	opts := &demoOptions{Out: env.Out, Err: env.Err, Version: env.Version}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Stream a sample video from a local seeder, with no origin and no internet",
		Long: `demo seeds a small sample video (built into the binary) from a second
BitTorrent client on loopback, starts a daemon on 127.0.0.1, streams the video through it, checks
the first bytes against the file, and prints a stream URL and a playlist URL
for VLC or a browser. It keeps serving until Ctrl-C.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Port < 1 || opts.Port > 65535 {
				return usageErrorf(cmd, "--port %d is out of range 1-65535", opts.Port)
			}
			if runF != nil {
				return runF(opts)
			}
			return runDemo(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.File, "file", "", "video file to seed (default: the built-in 30 s sample)")
	cmd.Flags().IntVar(&opts.Port, "port", config.DefaultStreamPort, "media listener port on 127.0.0.1")
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "keep the demo's data here instead of a temporary directory")
	cmd.Flags().DurationVar(&opts.Wait, "wait", time.Minute, "how long to wait for the stream to become playable")
	cmd.Flags().BoolVar(&opts.Once, "once", false, "stop after the check instead of serving until Ctrl-C")
	return cmd
}

func runDemo(ctx context.Context, opts *demoOptions) (err error) {
	var file string
	if opts.File != "" {
		if file, err = filepath.Abs(opts.File); err != nil {
			return err
		}
		if fi, err := os.Stat(file); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("demo: --file %s is not a readable regular file", opts.File)
		}
	}
	dir := opts.Dir
	if dir == "" {
		dir, err = os.MkdirTemp("", "torrentclaw-demo-")
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	}
	if file == "" {
		// The sample is built in, so the demo works from any directory.
		if file, err = sample.Write(filepath.Join(dir, "sample")); err != nil {
			return err
		}
	}

	seeder, err := daemon.NewSeeder(daemon.SeederOptions{DataDir: filepath.Join(dir, "seeder"), ListenHost: "127.0.0.1"})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, seeder.Close()) }()
	seed, err := seeder.Seed(ctx, file)
	if err != nil {
		return fmt.Errorf("seed %s: %w", filepath.Base(file), err)
	}
	fmt.Fprintf(opts.Err, "seeding %s on %s\n", filepath.Base(file), seed.Peer)

	cfg := config.Default()
	cfg.Stream.Listen = "127.0.0.1"
	cfg.Stream.Port = opts.Port
	cfg.Torrent.DataDir = filepath.Join(dir, "daemon")
	cfg.Torrent.DownloadDir = filepath.Join(dir, "daemon", "downloads")
	cfg.HLS.Dir = filepath.Join(dir, "daemon", "hls")
	cfg.Torrent.ListenPort = 0
	cfg.Torrent.ListenAddr = "127.0.0.1"
	cfg.Torrent.DHT = false
	cfg.Torrent.Trackers = nil

	dctx, stop := context.WithCancel(ctx)
	defer stop()
	client, wait, err := startDaemon(dctx, cfg, opts.Version, opts.Err)
	if err != nil {
		return err
	}
	defer func() {
		stop()
		err = errors.Join(err, wait())
	}()

	add, err := client.AddTask(ctx, control.AddRequest{Source: seed.Magnet, FileIndex: -1, Title: "torrentclaw sample"})
	if err != nil {
		return fmt.Errorf("add the sample to the daemon: %w", err)
	}
	if err := waitPlayable(ctx, client, add.TaskID, opts.Wait); err != nil {
		return err
	}
	if err := checkFirstBytes(ctx, add.StreamURL, file); err != nil {
		return err
	}
	fmt.Fprintf(opts.Err, "checked the first %d KiB through /stream: identical to %s\n", demoCheckBytes>>10, filepath.Base(file))
	fmt.Fprintf(opts.Out, "stream:   %s\nplaylist: %s\n", add.StreamURL, add.PlaylistURL)
	fmt.Fprintln(opts.Err, "open the playlist URL in VLC, or the stream URL in a browser; Ctrl-C stops the demo")
	if opts.Once {
		return nil
	}
	<-ctx.Done()
	return nil
}

// waitPlayable polls the task until its head and tail are verified.
func waitPlayable(ctx context.Context, c *control.Client, id string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ti, err := c.Task(ctx, id)
		if err == nil && ti.StreamReady {
			return nil
		}
		if err == nil && ti.State == "failed" {
			return fmt.Errorf("demo task failed: %s", ti.Error)
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the sample did not become playable within %s", limit)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// checkFirstBytes fetches the head of the stream and compares it with file.
func checkFirstBytes(ctx context.Context, streamURL, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, streamURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=0-%d", demoCheckBytes-1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch the stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("fetch the stream: status %s", resp.Status)
	}
	got, err := io.ReadAll(io.LimitReader(resp.Body, demoCheckBytes))
	if err != nil {
		return fmt.Errorf("fetch the stream: %w", err)
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	want := make([]byte, len(got))
	if _, err := io.ReadFull(f, want); err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("the streamed bytes differ from the sample file")
	}
	return nil
}
