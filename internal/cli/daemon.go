package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/daemon"
)

// daemonOptions holds the daemon command's flags. A nil override was not
// given on the command line and leaves the config value alone.
type daemonOptions struct {
	Err        io.Writer
	Version    string
	ConfigPath string // --config; "" = $TORRENTCLAW_CONFIG, then the default

	Listen             *string
	Port               *int
	TLSPort            *int
	RequireStreamToken *bool
	UPnP               *bool
	DataDir            *string
	DownloadDir        *string
	LogLevel           *config.LogLevel
	// Strict refuses to start when the config file holding the API key is
	// readable by group or others; otherwise that is a warning.
	Strict bool
}

func newDaemonCmd(env *Env, runF func(*daemonOptions) error) *cobra.Command {
	opts := &daemonOptions{Err: env.Err, Version: env.Version}
	var (
		listen, dataDir, downloadDir, logLevel string
		port, tlsPort                          int
		requireToken, upnp                     bool
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the daemon in the foreground",
		Long: `Run the daemon in the foreground until SIGINT or SIGTERM: the media listener
(stream.listen:stream.port) for players and browsers, the control socket
(<data_dir>/control.sock) for this CLI, the torrent client, and the origin
sync loop when an origin is configured.

Settings come from flags, then the environment (TORRENTCLAW_<SECTION>_<KEY>,
e.g. TORRENTCLAW_STREAM_PORT), then the config file, then the defaults. A flag
that is not given leaves the config value alone.

SIGHUP reloads the config file and environment and applies what can change
while running (log level, rate limits, CORS origins, TLS certificates, the
stream-token requirement); the log says what needs a restart.`,
		Example: `  torrentclaw daemon
  torrentclaw daemon --listen 127.0.0.1 --port 8080
  torrentclaw daemon --require-stream-token --upnp`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			opts.ConfigPath = env.ConfigPath
			if f.Changed("listen") {
				opts.Listen = &listen
			}
			if f.Changed("port") {
				if port < 1 || port > 65535 {
					return usageErrorf(cmd, "--port must be 1-65535, got %d", port)
				}
				opts.Port = &port
			}
			if f.Changed("tls-port") {
				if tlsPort < 0 || tlsPort > 65535 {
					return usageErrorf(cmd, "--tls-port must be 0 (off) or 1-65535, got %d", tlsPort)
				}
				opts.TLSPort = &tlsPort
			}
			if f.Changed("require-stream-token") {
				opts.RequireStreamToken = &requireToken
			}
			if f.Changed("upnp") {
				opts.UPnP = &upnp
			}
			for _, d := range []struct {
				flag string
				val  *string
				dst  **string
			}{{"data-dir", &dataDir, &opts.DataDir}, {"download-dir", &downloadDir, &opts.DownloadDir}} {
				if !f.Changed(d.flag) {
					continue
				}
				if *d.val == "" {
					return usageErrorf(cmd, "--%s must not be empty", d.flag)
				}
				abs, err := filepath.Abs(*d.val)
				if err != nil {
					return usageErrorf(cmd, "--%s: %v", d.flag, err)
				}
				*d.dst = &abs
			}
			if f.Changed("log-level") {
				lvl, err := config.ParseLogLevel(logLevel)
				if err != nil {
					return usageErrorf(cmd, "--log-level: %v", err)
				}
				opts.LogLevel = &lvl
			}
			if runF != nil {
				return runF(opts)
			}
			return runDaemon(cmd.Context(), opts)
		},
	}
	cmd.AddCommand(newDaemonInstallCmd(env, nil), newDaemonUninstallCmd(env, nil))
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "", "media listener address (stream.listen; default 0.0.0.0)")
	f.IntVar(&port, "port", 0, fmt.Sprintf("media listener port (stream.port; default %d)", config.DefaultStreamPort))
	f.IntVar(&tlsPort, "tls-port", 0, "HTTPS media listener port, 0 = off (stream.tls_port)")
	f.BoolVar(&requireToken, "require-stream-token", false, "refuse tasks that have no stream token (stream.require_stream_token)")
	f.BoolVar(&upnp, "upnp", false, "map the media and BitTorrent ports on the router with UPnP (upnp.enabled)")
	f.StringVar(&dataDir, "data-dir", "", "state, control socket and caches (torrent.data_dir)")
	f.StringVar(&downloadDir, "download-dir", "", "where downloads go (torrent.download_dir)")
	f.StringVar(&logLevel, "log-level", "", "debug, info, warn or error (log.level)")
	f.BoolVar(&opts.Strict, "strict", false, "refuse to start when the config file holding the API key is readable by group or others")
	return cmd
}

func runDaemon(ctx context.Context, opts *daemonOptions) error {
	cfg, sources, err := daemonConfigSources(opts)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level.Level())
	log := newLogger(opts.Err, level, cfg.Log.Format)
	d, err := daemon.New(daemon.Options{
		Config:   cfg,
		Sources:  sources,
		Version:  opts.Version,
		Logger:   log,
		LogLevel: level,
	})
	if err != nil {
		return err
	}
	return runWithReload(ctx, d, log, func() (config.Config, error) { return daemonConfig(opts) })
}

// daemonConfig resolves the daemon's config once: flags over environment
// over file over defaults.
func daemonConfig(opts *daemonOptions) (config.Config, error) {
	cfg, _, err := daemonConfigSources(opts)
	return cfg, err
}

// daemonConfigSources is [daemonConfig] that also says where each value
// came from.
func daemonConfigSources(opts *daemonOptions) (config.Config, config.Sources, error) {
	cfg, sources, path, err := loadConfigSources(opts.ConfigPath)
	if err != nil {
		return config.Config{}, nil, err
	}
	if err := config.CheckPermissions(path); err != nil {
		if opts.Strict || !errors.Is(err, config.ErrInsecurePermissions) {
			return config.Config{}, nil, err
		}
		fmt.Fprintf(opts.Err, "warning: %s\n", oneLine(err.Error()))
	}
	flag := func(key, name string, set bool) {
		if set {
			sources[key] = "--" + name
		}
	}
	flag("torrent.data_dir", "data-dir", opts.DataDir != nil)
	flag("torrent.download_dir", "download-dir", opts.DownloadDir != nil)
	flag("stream.listen", "listen", opts.Listen != nil)
	flag("stream.port", "port", opts.Port != nil)
	flag("stream.tls_port", "tls-port", opts.TLSPort != nil)
	flag("stream.require_stream_token", "require-stream-token", opts.RequireStreamToken != nil)
	flag("upnp.enabled", "upnp", opts.UPnP != nil)
	flag("log.level", "log-level", opts.LogLevel != nil)
	if opts.DataDir != nil {
		// Directories derived from the data dir move with it, unless the
		// file set them.
		old := cfg.Torrent.DataDir
		if cfg.Torrent.DownloadDir == filepath.Join(old, "downloads") {
			cfg.Torrent.DownloadDir = filepath.Join(*opts.DataDir, "downloads")
		}
		if cfg.HLS.Dir == filepath.Join(old, "hls") {
			cfg.HLS.Dir = filepath.Join(*opts.DataDir, "hls")
		}
		cfg.Torrent.DataDir = *opts.DataDir
	}
	setIf(&cfg.Torrent.DownloadDir, opts.DownloadDir)
	setIf(&cfg.Stream.Listen, opts.Listen)
	setIf(&cfg.Stream.Port, opts.Port)
	setIf(&cfg.Stream.TLSPort, opts.TLSPort)
	setIf(&cfg.Stream.RequireStreamToken, opts.RequireStreamToken)
	setIf(&cfg.UPnP.Enabled, opts.UPnP)
	setIf(&cfg.Log.Level, opts.LogLevel)
	if err := cfg.Validate(); err != nil {
		return config.Config{}, nil, fmt.Errorf("config with flags applied: %w", err)
	}
	return cfg, sources, nil
}

// setIf sets *dst to *v when v is not nil.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
