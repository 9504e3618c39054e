package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/daemon"
)

// version is set at build time:
// go build -ldflags "-X github.com/torrentclaw/cli/internal/cli.version=v1.2.3".
var version string

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130 // 128 + SIGINT, as shells report it
)

// Env is what commands get from the outside world. [Main] fills it from the
// process; tests build their own.
type Env struct {
	In  io.Reader
	Out io.Writer // requested output only
	Err io.Writer // progress, hints, warnings, errors

	// ConfigPath is the --config flag; "" means $TORRENTCLAW_CONFIG, then
	// the default path (see config.Path).
	ConfigPath string
	Version    string

	// LoadConfig loads the configuration from ConfigPath (file > defaults,
	// with environment overrides) and returns it with the path it read.
	LoadConfig func() (config.Config, string, error)
	// Client returns a client for the daemon's control socket. It does not
	// check that a daemon is running; Ping does.
	Client func() (*control.Client, error)
	// StartDaemon runs a daemon in-process until ctx is done. It returns
	// once the daemon is ready, with a client for it and wait, which
	// returns the daemon's result after ctx is done. Callers must cancel
	// ctx and call wait.
	StartDaemon func(ctx context.Context) (client *control.Client, wait func() error, err error)

	LookPath    func(file string) (string, error)
	StartPlayer func(path string, args ...string) error // starts and does not wait
	// IsTerminal reports whether w is a terminal (for the progress bar).
	IsTerminal func(w io.Writer) bool
}

// Main runs the command line args with the given streams and returns the
// process exit code. It is the only function that turns errors into exit
// codes and user-facing text.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling: a second
	// Ctrl-C kills a shutdown that hangs.
	context.AfterFunc(ctx, stop)
	return run(ctx, newEnv(in, out, errOut), args)
}

// newEnv returns the Env of a real process.
func newEnv(in io.Reader, out, errOut io.Writer) *Env {
	env := &Env{
		In:          in,
		Out:         out,
		Err:         errOut,
		Version:     buildVersion(),
		LookPath:    exec.LookPath,
		StartPlayer: startPlayer,
		IsTerminal:  isTerminal,
	}
	env.LoadConfig = func() (config.Config, string, error) { return loadConfig(env.ConfigPath) }
	env.Client = func() (*control.Client, error) {
		cfg, _, err := env.LoadConfig()
		if err != nil {
			return nil, err
		}
		return control.NewClient(daemon.SocketPath(cfg)), nil
	}
	env.StartDaemon = func(ctx context.Context) (*control.Client, func() error, error) {
		cfg, _, err := env.LoadConfig()
		if err != nil {
			return nil, nil, err
		}
		return startDaemon(ctx, cfg, env.Version, env.Err)
	}
	return env
}

// run executes args against env and maps the outcome to an exit code.
func run(ctx context.Context, env *Env, args []string) int {
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root := newRootCmd(env)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return exitInterrupted
	}
	fmt.Fprintf(env.Err, "torrentclaw: %s\n", oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

// oneLine folds a (possibly errors.Join'ed) message onto one line.
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "; ")
}

// usageError is an error in how a command was called: exit code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(cmd *cobra.Command, format string, a ...any) error {
	return &usageError{fmt.Errorf("%s (see '%s --help')", fmt.Sprintf(format, a...), cmd.CommandPath())}
}

// exactArgs is cobra.ExactArgs with a usage error naming the arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf(cmd, "%s takes %s, got %d arguments", cmd.Name(), names, len(args))
		}
		return nil
	}
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf(cmd, "%s takes no arguments, got %q", cmd.Name(), args[0])
	}
	return nil
}

// subcommandArgs is the Args of a command that only groups subcommands: an
// argument that is not one of them is a usage error (cobra would otherwise
// print help and exit 0).
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, applied lazily
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usageErrorf(cmd, "%s", msg)
}

// showHelp is the RunE of a command that only groups subcommands.
func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// newRootCmd builds the whole command tree.
func newRootCmd(env *Env) *cobra.Command {
	root := newRoot(env)
	root.AddCommand(
		newDaemonCmd(env, nil),
		newStreamCmd(env, nil),
		newStatusCmd(env, nil),
		newTokenCmd(env),
		newRmCmd(env, nil),
		newPauseCmd(env, nil),
		newResumeCmd(env, nil),
		newFilesCmd(env, nil),
		newSeedCmd(env, nil),
		newConfigCmd(env),
		newDoctorCmd(env, nil),
		newVersionCmd(env, nil),
		newDemoCmd(env, nil),
	)
	addCompletions(root, env)
	return root
}

// newRoot returns the root command without subcommands: streams, silence,
// usage errors and the persistent --config flag.
func newRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "torrentclaw",
		Short: "Stream torrents to browsers and VLC while they download",
		Long: `torrentclaw streams torrents to a browser <video> element or VLC while they
download. The daemon command runs the long-lived process; the other commands
talk to it over its control socket, or run one in-process when none runs.`,
		Example: `  torrentclaw demo
  torrentclaw stream 'magnet:?xt=urn:btih:…' --open
  torrentclaw daemon`,
		Args:          subcommandArgs,
		RunE:          showHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErrorf(cmd, "%v", err)
	})
	root.PersistentFlags().StringVar(&env.ConfigPath, "config", "",
		"config file (default $TORRENTCLAW_CONFIG, then $XDG_CONFIG_HOME/torrentclaw/config.toml)")
	return root
}

// buildVersion returns the version stamped at build time (make release), else
// the module version go install recorded, else "dev" with the commit time and
// revision from the build info ("dev-20261203070000-0123456789ab", "+dirty"
// when the tree had changes), else "dev". It has no spaces or colons, so it
// fits a User-Agent product token.
func buildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(version, bi)
}

// versionFrom is [buildVersion] on given inputs, for tests.
func versionFrom(stamped string, bi *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if bi == nil {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	v := "dev-"
	if t, err := time.Parse(time.RFC3339, at); err == nil {
		v += t.UTC().Format("20060102150405") + "-"
	}
	v += rev[:min(len(rev), 12)]
	if dirty {
		v += "+dirty"
	}
	return v
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startPlayer starts path with args, detached from our streams, and does not
// wait: the player outlives this command.
func startPlayer(path string, args ...string) error {
	cmd := exec.Command(path, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", path, err)
	}
	return cmd.Process.Release()
}
