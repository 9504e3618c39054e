package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/atomicfile"
	"github.com/torrentclaw/cli/internal/config"
)

func newConfigCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Create, show or check the config file",
		Long: `The config file is TOML, at --config, else $TORRENTCLAW_CONFIG, else
$XDG_CONFIG_HOME/torrentclaw/config.toml. Every key can be set from the
environment as TORRENTCLAW_<SECTION>_<KEY> (TORRENTCLAW_STREAM_PORT=8080;
lists comma-separated); the environment overrides the file, and daemon flags
override both. $TORRENTCLAW_API_KEY also sets origin.api_key.`,
		Args: subcommandArgs,
		RunE: showHelp,
	}
	cmd.AddCommand(
		newConfigInitCmd(env, nil),
		newConfigShowCmd(env, nil),
		newConfigCheckCmd(env, nil),
	)
	return cmd
}

type configInitOptions struct {
	Err  io.Writer
	Path string // resolved config path

	Force bool
}

func newConfigInitCmd(env *Env, runF func(*configInitOptions) error) *cobra.Command {
	opts := &configInitOptions{Err: env.Err}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write the documented example config (mode 0600)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = config.Path(env.ConfigPath)
			if runF != nil {
				return runF(opts)
			}
			return runConfigInit(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite an existing config file")
	return cmd
}

func runConfigInit(opts *configInitOptions) (err error) {
	if opts.Path == "" {
		return errors.New("config init: no config path (no home directory): use --config or $TORRENTCLAW_CONFIG")
	}
	if _, err := os.Lstat(opts.Path); err == nil && !opts.Force {
		return fmt.Errorf("config init: %s already exists (use --force to overwrite it)", opts.Path)
	}
	dir := filepath.Dir(opts.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("config init: %w", err)
	}
	// atomicfile writes through a 0600 temp file: no group/world-readable
	// moment, and never half a file.
	if err := atomicfile.Write(opts.Path, config.Example(), 0o600); err != nil {
		return fmt.Errorf("config init: %w", err)
	}
	fmt.Fprintf(opts.Err, "wrote %s\n", opts.Path)
	return nil
}

type configShowOptions struct {
	Out, Err   io.Writer
	LoadConfig func() (config.Config, string, error)
	// LoadSources also says where each value came from; nil shows no sources.
	LoadSources func() (config.Config, config.Sources, string, error)

	Env bool // print TORRENTCLAW_*=value lines instead of TOML
}

func newConfigShowCmd(env *Env, runF func(*configShowOptions) error) *cobra.Command {
	opts := &configShowOptions{Out: env.Out, Err: env.Err, LoadConfig: env.LoadConfig,
		LoadSources: func() (config.Config, config.Sources, string, error) {
			return loadConfigSources(env.ConfigPath)
		}}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the effective config, secrets redacted, and where each value came from",
		Long: `Print the effective config as TOML, secrets redacted. A value that does not
come from the defaults carries a comment saying where it came from: the file
(with its line) or the environment variable that set it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runConfigShow(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Env, "env", false, "print the config as TORRENTCLAW_<SECTION>_<KEY>=value lines (for containers)")
	return cmd
}

func runConfigShow(opts *configShowOptions) error {
	var (
		cfg     config.Config
		sources config.Sources
		path    string
		err     error
	)
	if opts.LoadSources != nil {
		cfg, sources, path, err = opts.LoadSources()
	} else {
		cfg, path, err = opts.LoadConfig()
	}
	if err != nil {
		return err
	}
	if !fileExists(path) {
		fmt.Fprintf(opts.Err, "no config file at %s: showing the defaults and the environment\n", orDash(path))
	}
	if opts.Env {
		_, err := io.WriteString(opts.Out, strings.Join(cfg.Redacted().Environ(), "\n")+"\n")
		return err
	}
	var buf bytes.Buffer
	if err := config.Encode(&buf, cfg.Redacted()); err != nil {
		return err
	}
	_, err = opts.Out.Write(annotateSources(buf.Bytes(), sources, path))
	return err
}

// annotateSources appends "# <source>" to each "key = value" line of the
// encoded TOML whose value did not come from the defaults. The result is
// still valid TOML.
func annotateSources(encoded []byte, sources config.Sources, path string) []byte {
	var out bytes.Buffer
	section := ""
	for _, line := range strings.SplitAfter(string(encoded), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") && strings.HasSuffix(trimmed, "]") {
			section = strings.Trim(trimmed, "[]")
		}
		key, _, isKV := strings.Cut(trimmed, " = ")
		src := sources.Of(section + "." + key)
		if !isKV || section == "" || src == config.SourceDefault {
			out.WriteString(line)
			continue
		}
		if strings.HasPrefix(src, "file") && path != "" {
			src = path + " " + strings.TrimPrefix(src, "file ")
		}
		out.WriteString(strings.TrimRight(line, "\n") + "  # " + src + "\n")
	}
	return out.Bytes()
}

type configCheckOptions struct {
	Out, Err   io.Writer
	LoadConfig func() (config.Config, string, error)

	Strict bool
}

func newConfigCheckCmd(env *Env, runF func(*configCheckOptions) error) *cobra.Command {
	opts := &configCheckOptions{Out: env.Out, Err: env.Err, LoadConfig: env.LoadConfig}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Load and validate the config file, and check its permissions",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runConfigCheck(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Strict, "strict", false, "fail when the file is readable by group or others")
	return cmd
}

func runConfigCheck(opts *configCheckOptions) error {
	_, path, err := opts.LoadConfig()
	if err != nil {
		return err
	}
	if !fileExists(path) {
		_, err := fmt.Fprintf(opts.Out, "no config file at %s: the defaults are valid\n", orDash(path))
		return err
	}
	if err := config.CheckPermissions(path); err != nil {
		if !errors.Is(err, config.ErrInsecurePermissions) || opts.Strict {
			return err
		}
		fmt.Fprintf(opts.Err, "warning: %v\n", err)
	}
	_, err = fmt.Fprintf(opts.Out, "%s: ok\n", path)
	return err
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
