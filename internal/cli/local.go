package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/daemon"
)

// loadConfig loads the config file chosen by flagPath (see config.Path) and
// returns it with that path. A missing file at the default path means the
// defaults; config.Load applies $TORRENTCLAW_API_KEY and validates.
func loadConfig(flagPath string) (config.Config, string, error) {
	path := config.Path(flagPath)
	cfg, err := config.Load(path)
	if err != nil {
		return config.Config{}, path, err
	}
	return cfg, path, nil
}

// loadConfigSources is [loadConfig] that also says where each value came
// from.
func loadConfigSources(flagPath string) (config.Config, config.Sources, string, error) {
	path := config.Path(flagPath)
	cfg, src, err := config.LoadSources(path)
	if err != nil {
		return config.Config{}, nil, path, err
	}
	return cfg, src, path, nil
}

// newLogger returns the daemon's logger on w, at level or above, as text or
// JSON per format.
func newLogger(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// startDaemon runs a daemon for cfg in this process until ctx is done. It
// returns once the daemon is ready, with a client for its control socket
// and wait, which returns Run's result (after ctx is done) and closes the
// client. Logs below warning are dropped so progress output stays readable.
func startDaemon(ctx context.Context, cfg config.Config, version string, errOut io.Writer) (*control.Client, func() error, error) {
	level := max(cfg.Log.Level.Level(), slog.LevelWarn)
	// Only this command may change the in-process daemon: another terminal's
	// stream must not leave tasks in a daemon that stops with this one.
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, nil, err
	}
	owner := hex.EncodeToString(key[:])
	d, err := daemon.New(daemon.Options{
		Config:   cfg,
		Version:  version,
		Logger:   newLogger(errOut, level, cfg.Log.Format),
		OwnerKey: owner,
	})
	if err != nil {
		return nil, nil, err
	}
	// done is buffered so Run's goroutine can always deliver and exit.
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	select {
	case <-d.Ready():
	case err := <-done:
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = errors.New("daemon stopped before it was ready")
		}
		return nil, nil, err
	}
	client := control.NewClient(d.SocketPath()).WithOwnerKey(owner)
	wait := sync.OnceValue(func() error {
		err := <-done
		return errors.Join(err, client.Close())
	})
	return client, wait, nil
}

// conn is a connection to a daemon: one that was already running, or one
// this command started in-process.
type conn struct {
	client *control.Client
	local  bool         // the daemon runs in this process
	close  func() error // stops an in-process daemon and waits for it
}

// connect returns a connection to the running daemon, or, when none
// answers and start is not nil, to one started in-process under ctx.
func connect(ctx context.Context, clientF func() (*control.Client, error),
	start func(context.Context) (*control.Client, func() error, error), errOut io.Writer) (*conn, error) {
	c, err := clientF()
	if err != nil {
		return nil, err
	}
	hello, err := c.Hello(ctx)
	if err == nil {
		if hello.InProcess && start != nil {
			// Adding to it would leave the task in a daemon that stops
			// when the other terminal's command ends.
			_ = c.Close()
			return nil, fmt.Errorf("a daemon is running inside another terminal's 'torrentclaw stream' (pid %d) and stops when that command ends; "+
				"run 'torrentclaw daemon' for a shared one, or stop that stream first", hello.PID)
		}
		return &conn{client: c, close: c.Close}, nil
	}
	_ = c.Close() // idle connections only
	if !errors.Is(err, control.ErrNotRunning) || start == nil {
		return nil, err
	}
	fmt.Fprintln(errOut, "no daemon is running: starting one in this process (Ctrl-C stops it)")
	dctx, cancel := context.WithCancel(ctx)
	client, wait, err := start(dctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start daemon: %w", err)
	}
	return &conn{client: client, local: true, close: func() error {
		cancel()
		return wait()
	}}, nil
}

// runningClient returns a client for the running daemon, or an error that
// says how to start one.
func runningClient(ctx context.Context, clientF func() (*control.Client, error)) (*control.Client, error) {
	c, err := connect(ctx, clientF, nil, nil)
	if errors.Is(err, control.ErrNotRunning) {
		return nil, fmt.Errorf("%w; start one with: torrentclaw daemon", err)
	}
	if err != nil {
		return nil, err
	}
	return c.client, nil
}
