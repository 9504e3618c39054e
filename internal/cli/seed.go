package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/control"
)

type seedOptions struct {
	Out, Err    io.Writer
	Client      func() (*control.Client, error)
	StartDaemon func(context.Context) (*control.Client, func() error, error)

	Path string
	JSON bool
}

func newSeedCmd(env *Env, runF func(*seedOptions) error) *cobra.Command {
	opts := &seedOptions{Out: env.Out, Err: env.Err, Client: env.Client, StartDaemon: env.StartDaemon}
	cmd := &cobra.Command{
		Use:   "seed <path>",
		Short: "Make a torrent of a file or directory, seed it and print its magnet",
		Long: `Make a torrent of a file or directory and seed it from the running daemon
(or, when none runs, from one started in this process, until Ctrl-C). The
magnet link goes to stdout; with --json, one line {"magnet","infoHash","peer"}.
The magnet carries the daemon's address (x.pe) and the trackers in
torrent.trackers (tr=). Few clients dial x.pe: tested on loopback, qBittorrent 4.5
(libtorrent 2.0), Transmission 3.00 and aria2 1.36 all ignored it (none fetched
a torrent from a magnet whose only peer source was x.pe) and found the seed
through tr= instead; anacrolix-based clients (torrentclaw itself) use it. For
those clients, configure a tracker they can reach, or keep DHT on.`,
		Example: `  torrentclaw seed ./holiday.mp4
  torrentclaw seed ~/Videos/series --json`,
		Args: exactArgs(1, "one path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runSeed(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the magnet, infohash and peer address as JSON")
	return cmd
}

func runSeed(ctx context.Context, opts *seedOptions) (err error) {
	path, err := filepath.Abs(opts.Path)
	if err != nil {
		return fmt.Errorf("seed %s: %w", opts.Path, err)
	}
	if _, err := os.Stat(path); err != nil { // a clear error before starting anything
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("seed %s: no such file or directory", opts.Path)
		}
		return fmt.Errorf("seed: %w", err)
	}
	c, err := connect(ctx, opts.Client, opts.StartDaemon, opts.Err)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, c.close()) }()

	if !opts.JSON {
		fmt.Fprintf(opts.Err, "hashing %s…\n", path)
	}
	resp, err := c.client.Seed(ctx, path)
	if err != nil {
		return err
	}
	if opts.JSON {
		err = writeJSONLine(opts.Out, resp)
	} else {
		_, err = fmt.Fprintln(opts.Out, resp.Magnet)
	}
	if err != nil {
		return err
	}
	if !c.local {
		fmt.Fprintf(opts.Err, "the daemon seeds %s from %s\n", resp.InfoHash, resp.Peer)
		return nil
	}
	fmt.Fprintf(opts.Err, "seeding %s from %s until Ctrl-C\n", resp.InfoHash, resp.Peer)
	<-ctx.Done()
	return nil
}
