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
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/daemon"
)

type doctorOptions struct {
	Out        io.Writer
	LoadConfig func() (config.Config, string, error)
	Client     func() (*control.Client, error)
	LookPath   func(string) (string, error)
	// CheckOrigin asks the configured origin directly (no daemon running).
	CheckOrigin func(context.Context, config.Config) control.Check

	JSON bool
}

func newDoctorCmd(env *Env, runF func(*doctorOptions) error) *cobra.Command {
	opts := &doctorOptions{Out: env.Out, LoadConfig: env.LoadConfig, Client: env.Client, LookPath: env.LookPath, CheckOrigin: daemon.CheckOrigin}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the setup: config, directories, ffmpeg, VLC, and the daemon",
		Long: `Check the config file, that the data and download directories are writable,
that ffmpeg/ffprobe (HLS) and VLC (--open) are found, and whether a daemon is
running; when one is, add its own checks (listeners, origin, UPnP, …).
Exits 1 when any check fails; warnings do not fail.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runDoctor(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"checks":[{"name","ok","level","detail"}]}`)
	return cmd
}

func runDoctor(ctx context.Context, opts *doctorOptions) error {
	var checks []control.Check
	cfg, path, err := opts.LoadConfig()
	configOK := err == nil
	switch {
	case err != nil:
		checks = append(checks, fail("config", oneLine(err.Error())))
	case !fileExists(path):
		checks = append(checks, ok("config", fmt.Sprintf("no file at %s: using the defaults", orDash(path))))
	default:
		checks = append(checks, ok("config", path))
		if err := config.CheckPermissions(path); err != nil {
			checks = append(checks, warn("config permissions", err.Error()))
		}
	}
	if configOK {
		checks = append(checks,
			checkDir("data dir", cfg.Torrent.DataDir),
			checkDir("download dir", cfg.Torrent.DownloadDir),
			checkTool(opts.LookPath, "ffmpeg", cfg.HLS.FFmpegPath),
			checkTool(opts.LookPath, "ffprobe", cfg.HLS.FFprobePath),
		)
	}
	if p, err := findPlayer(opts.LookPath); err != nil {
		checks = append(checks, warn("vlc", "not found: --open needs VLC; any player can open the playlist URL"))
	} else {
		checks = append(checks, ok("vlc", p))
	}
	if configOK {
		dc, running := daemonChecks(ctx, opts.Client)
		checks = append(checks, dc...)
		if !running {
			// A running daemon reports its own state file.
			checks = append(checks, daemon.CheckState(cfg))
		}
		if !running && cfg.Origin.APIURL != "" {
			// The daemon reports its own origin link; without one, ask
			// the origin directly.
			checks = append(checks, opts.CheckOrigin(ctx, cfg))
		}
	}

	if opts.JSON {
		err = writeJSON(opts.Out, control.DoctorResponse{Checks: checks})
	} else {
		err = printChecks(opts.Out, checks)
	}
	if err != nil {
		return err
	}
	failed := 0
	for _, c := range checks {
		if c.Level == control.LevelFail {
			failed++
		}
	}
	switch failed {
	case 0:
		return nil
	case 1:
		return errors.New("doctor: 1 check failed")
	}
	return fmt.Errorf("doctor: %d checks failed", failed)
}

// daemonChecks says whether a daemon runs and, if so, adds its checks.
func daemonChecks(ctx context.Context, clientF func() (*control.Client, error)) (checks []control.Check, running bool) {
	client, err := clientF()
	if err != nil {
		return []control.Check{fail("daemon", oneLine(err.Error()))}, false
	}
	defer client.Close()
	if err := client.Ping(ctx); err != nil {
		if errors.Is(err, control.ErrNotRunning) {
			return []control.Check{warn("daemon", "not running (start it with: torrentclaw daemon)")}, false
		}
		return []control.Check{fail("daemon", oneLine(err.Error()))}, false
	}
	checks = []control.Check{ok("daemon", "running, control socket "+client.SocketPath())}
	remote, err := client.Doctor(ctx)
	if err != nil {
		return append(checks, fail("daemon checks", oneLine(err.Error()))), true
	}
	for _, c := range remote {
		c.Name = "daemon: " + c.Name
		checks = append(checks, c)
	}
	return checks, true
}

// checkDir checks that dir is (or can be created as) a writable directory.
func checkDir(name, dir string) control.Check {
	if dir == "" {
		return fail(name, "not set")
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		parent := filepath.Dir(dir)
		for parent != filepath.Dir(parent) && !fileExists(parent) {
			parent = filepath.Dir(parent)
		}
		if err := probeWrite(parent); err != nil {
			return fail(name, fmt.Sprintf("%s does not exist and cannot be created: %v", dir, err))
		}
		return ok(name, dir+" (created on first start)")
	}
	if err != nil {
		return fail(name, err.Error())
	}
	if !fi.IsDir() {
		return fail(name, dir+" is not a directory")
	}
	if err := probeWrite(dir); err != nil {
		return fail(name, fmt.Sprintf("%s is not writable: %v", dir, err))
	}
	return ok(name, dir)
}

// probeWrite creates and removes a file in dir.
func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".torrentclaw-doctor-*")
	if err != nil {
		return err
	}
	return errors.Join(f.Close(), os.Remove(f.Name()))
}

// checkTool looks for an HLS tool at configured, else on PATH.
func checkTool(lookPath func(string) (string, error), name, configured string) control.Check {
	target := name
	if configured != "" {
		target = configured
	}
	p, err := lookPath(target)
	if err != nil {
		return warn(name, fmt.Sprintf("%s not found: HLS for browsers is off; %s", target, installHint()))
	}
	return ok(name, p)
}

// installHint says how to install ffmpeg on this system.
func installHint() string {
	switch runtime.GOOS {
	case "darwin":
		return "install it with: brew install ffmpeg"
	case "windows":
		return "install it with: winget install ffmpeg"
	}
	return "install it with your package manager (apt install ffmpeg, dnf install ffmpeg, …) or set hls.ffmpeg_path"
}

func ok(name, detail string) control.Check {
	return control.Check{Name: name, OK: true, Level: control.LevelOK, Detail: detail}
}

func warn(name, detail string) control.Check {
	return control.Check{Name: name, OK: true, Level: control.LevelWarn, Detail: detail}
}

func fail(name, detail string) control.Check {
	return control.Check{Name: name, OK: false, Level: control.LevelFail, Detail: detail}
}

// printChecks writes one line per check: level, name, detail.
func printChecks(w io.Writer, checks []control.Check) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Level, c.Name, c.Detail)
	}
	return tw.Flush()
}
