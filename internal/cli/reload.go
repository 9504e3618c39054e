package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/daemon"
)

// runWithReload runs d until ctx is done. On each SIGHUP it resolves the
// config again (load returns flags > environment > file > defaults) and
// hands it to d.Reload, which applies what can change live and logs the
// rest. A config that does not load is logged and changes nothing.
func runWithReload(ctx context.Context, d *daemon.Daemon, log *slog.Logger, load func() (config.Config, error)) error {
	// Buffered: signal.Notify drops signals when the receiver is busy; one
	// pending reload is enough.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-rctx.Done():
				return
			case <-hup:
			}
			cfg, err := load()
			if err != nil {
				log.Error("config not reloaded", "err", err)
				continue
			}
			select {
			case <-d.Ready():
			case <-rctx.Done():
				return
			}
			// Reload logs what it applied and what it could not.
			_, _, _ = d.Reload(cfg)
		}
	})
	err := d.Run(ctx)
	stop()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
