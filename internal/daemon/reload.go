package daemon

import (
	"errors"
	"slices"
	"strings"

	"github.com/torrentclaw/cli/internal/config"
)

// liveKeys are the config keys [Daemon.Reload] applies without a restart.
var liveKeys = []string{
	"log.level",
	"torrent.upload_rate",
	"torrent.download_rate",
	"stream.cors_origins",
	"stream.require_stream_token",
}

// Reload applies cfg's keys that can change while the daemon runs: the log
// level (when Options.LogLevel is set), rate limits, CORS origins and the
// stream-token requirement; it also re-reads the TLS certificate files. It
// logs what it applied and which changed keys need a restart, and returns
// them. Call it after Ready (the command that runs the daemon does, on
// SIGHUP); calls are serialised.
func (d *Daemon) Reload(cfg config.Config) (applied, restart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	<-d.ready
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.live
	if old == nil {
		c := d.cfg
		old = &c
	}
	var errs []error
	for _, key := range changedKeys(*old, cfg) {
		if !slices.Contains(liveKeys, key) {
			restart = append(restart, key)
			continue
		}
		switch key {
		case "log.level":
			if d.opts.LogLevel == nil {
				restart = append(restart, key)
				continue
			}
			d.opts.LogLevel.Set(cfg.Log.Level.Level())
		case "torrent.upload_rate", "torrent.download_rate":
			if slices.Contains(applied, "torrent.upload_rate") || slices.Contains(applied, "torrent.download_rate") {
				break // one call sets both
			}
			if err := d.eng.SetRates(int64(cfg.Torrent.UploadRate), int64(cfg.Torrent.DownloadRate)); err != nil {
				errs = append(errs, err)
				continue
			}
		case "stream.cors_origins":
			c := *old
			c.Stream.CORSOrigins = cfg.Stream.CORSOrigins
			if err := d.media.SetCORSOrigins(corsOriginsOf(c)); err != nil {
				errs = append(errs, err)
				continue
			}
		case "stream.require_stream_token":
			if d.cfg.UPnP.Enabled && !cfg.Stream.RequireStreamToken {
				errs = append(errs, ErrUPnPWithoutTokens)
				continue
			}
			d.tokens.SetRequireToken(cfg.Stream.RequireStreamToken)
		}
		applied = append(applied, key)
	}
	if d.tlsLn != nil {
		if err := d.media.ReloadCertificates(); err != nil {
			errs = append(errs, err)
		} else {
			applied = append(applied, "tls certificates (re-read)")
		}
	}
	// Keep what was applied; a key that needs a restart keeps its old value,
	// so the next reload reports it again.
	next := *old
	for _, key := range applied {
		switch key {
		case "log.level":
			next.Log.Level = cfg.Log.Level
		case "torrent.upload_rate", "torrent.download_rate":
			next.Torrent.UploadRate, next.Torrent.DownloadRate = cfg.Torrent.UploadRate, cfg.Torrent.DownloadRate
		case "stream.cors_origins":
			next.Stream.CORSOrigins = cfg.Stream.CORSOrigins
		case "stream.require_stream_token":
			next.Stream.RequireStreamToken = cfg.Stream.RequireStreamToken
		}
	}
	d.live = &next
	err = errors.Join(errs...)
	d.log.Info("config reloaded", "applied", strings.Join(applied, ","), "needs_restart", strings.Join(restart, ","))
	if len(restart) > 0 {
		d.log.Warn("some config changes need a restart", "keys", strings.Join(restart, ","))
	}
	if err != nil {
		d.log.Warn("some config changes were not applied", "err", err)
	}
	return applied, restart, err
}

// changedKeys lists the dotted keys whose values differ between a and b.
func changedKeys(a, b config.Config) []string {
	ea, eb := a.Environ(), b.Environ()
	keys := config.Keys()
	var out []string
	for i := range ea {
		if ea[i] != eb[i] {
			out = append(out, keys[i].Name)
		}
	}
	return out
}
