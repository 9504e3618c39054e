package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/atomicfile"
	"github.com/torrentclaw/cli/internal/config"
)

// serviceName is the systemd unit's name.
const serviceName = "torrentclaw.service"

type serviceOptions struct {
	Out, Err   io.Writer
	ConfigPath string // --config as given; "" = the daemon's own default lookup
	LoadConfig func() (config.Config, string, error)
	// Executable returns the absolute path of this program (os.Executable).
	Executable func() (string, error)

	User  bool   // a user unit ($XDG_CONFIG_HOME/systemd/user) instead of a system one
	RunAs string // system unit: the account the daemon runs as
	Force bool   // overwrite an existing unit
	// SystemDir and UserDir are where units go; tests point them elsewhere.
	SystemDir, UserDir string
}

func newServiceOptions(env *Env) *serviceOptions {
	return &serviceOptions{
		Out: env.Out, Err: env.Err, LoadConfig: env.LoadConfig,
		Executable: func() (string, error) {
			p, err := os.Executable()
			if err != nil {
				return "", err
			}
			return filepath.EvalSymlinks(p)
		},
		SystemDir: "/etc/systemd/system",
	}
}

func newDaemonInstallCmd(env *Env, runF func(*serviceOptions) error) *cobra.Command {
	opts := newServiceOptions(env)
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Write a systemd unit that runs the daemon (system-wide, or --user)",
		Long: `Write a systemd unit for the daemon: /etc/systemd/system/torrentclaw.service
(run as root, e.g. with sudo; the daemon runs as --run-as, default the user who
called sudo), or with --user $XDG_CONFIG_HOME/systemd/user/torrentclaw.service
for your own user manager.

The unit runs this binary with the data and download directories of the
current config, restarts it on failure, and sandboxes it: no new privileges,
a read-only file system except those directories (ProtectSystem=strict,
ReadWritePaths=), a private /tmp, and for a system unit a read-only /home.
Reload the config with 'systemctl reload' (SIGHUP). Enable it with the
commands the install prints.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ConfigPath = env.ConfigPath
			if runF != nil {
				return runF(opts)
			}
			return runServiceInstall(opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.User, "user", false, "install a user unit instead of a system one")
	f.StringVar(&opts.RunAs, "run-as", "", "system unit: the account the daemon runs as (default: $SUDO_USER, else the current user)")
	f.BoolVar(&opts.Force, "force", false, "overwrite an existing unit")
	return cmd
}

func newDaemonUninstallCmd(env *Env, runF func(*serviceOptions) error) *cobra.Command {
	opts := newServiceOptions(env)
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove the systemd unit written by 'daemon install' (system, or --user)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runServiceUninstall(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.User, "user", false, "remove the user unit instead of the system one")
	return cmd
}

// unitPath returns where the unit goes.
func (o *serviceOptions) unitPath() (string, error) {
	if !o.User {
		return filepath.Join(o.SystemDir, serviceName), nil
	}
	dir := o.UserDir
	if dir == "" {
		base := os.Getenv("XDG_CONFIG_HOME")
		if !filepath.IsAbs(base) {
			home, err := os.UserHomeDir()
			if err != nil || home == "" {
				return "", errors.New("no home directory for a user unit: set $XDG_CONFIG_HOME")
			}
			base = filepath.Join(home, ".config")
		}
		dir = filepath.Join(base, "systemd", "user")
	}
	return filepath.Join(dir, serviceName), nil
}

func (o *serviceOptions) systemctl() string {
	if o.User {
		return "systemctl --user"
	}
	return "systemctl"
}

func runServiceInstall(opts *serviceOptions) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("daemon install writes a systemd unit, which needs Linux (this is %s)", runtime.GOOS)
	}
	cfg, cfgPath, err := opts.LoadConfig()
	if err != nil {
		return err
	}
	exe, err := opts.Executable()
	if err != nil {
		return fmt.Errorf("daemon install: find this program: %w", err)
	}
	path, err := opts.unitPath()
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil && !opts.Force {
		return fmt.Errorf("daemon install: %s already exists (use --force to overwrite it)", path)
	}
	u := unitSpec{Exe: exe, User: opts.User, Config: cfg}
	if fileExists(cfgPath) {
		if u.ConfigPath, err = filepath.Abs(cfgPath); err != nil {
			return err
		}
	}
	if !opts.User {
		if u.RunAs = opts.RunAs; u.RunAs == "" {
			u.RunAs = os.Getenv("SUDO_USER")
		}
		if u.RunAs == "" {
			cur, err := user.Current()
			if err != nil {
				return fmt.Errorf("daemon install: who runs the daemon? pass --run-as: %w", err)
			}
			u.RunAs = cur.Username
		}
	}
	// ReadWritePaths= needs the directories to exist.
	for _, d := range u.writable() {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("daemon install: %w", err)
		}
		if err := chownTo(d, u.RunAs); err != nil {
			return fmt.Errorf("daemon install: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("daemon install: %w", err)
	}
	if err := atomicfile.Write(path, []byte(u.render()), 0o644); err != nil {
		return fmt.Errorf("daemon install: %w", err)
	}
	fmt.Fprintf(opts.Err, "wrote %s\n", path)
	fmt.Fprintf(opts.Out, "%[1]s daemon-reload\n%[1]s enable --now torrentclaw\n", opts.systemctl())
	fmt.Fprintf(opts.Err, "run the commands above to start it now and at every boot; '%s reload torrentclaw' re-reads the config\n", opts.systemctl())
	return nil
}

func runServiceUninstall(opts *serviceOptions) error {
	path, err := opts.unitPath()
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("daemon uninstall: no unit at %s", path)
		}
		return fmt.Errorf("daemon uninstall: %w", err)
	}
	fmt.Fprintf(opts.Err, "removed %s (the data and downloads stay)\n", path)
	fmt.Fprintf(opts.Out, "%[1]s disable --now torrentclaw\n%[1]s daemon-reload\n", opts.systemctl())
	return nil
}

// unitSpec is what a unit file says.
type unitSpec struct {
	Exe        string
	ConfigPath string // "" = none
	User       bool
	RunAs      string // system units only
	Config     config.Config
}

// writable lists the directories the daemon writes: data, downloads, HLS.
func (u unitSpec) writable() []string {
	var out []string
	for _, d := range []string{u.Config.Torrent.DataDir, u.Config.Torrent.DownloadDir, u.Config.HLS.Dir} {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// render writes the unit file.
func (u unitSpec) render() string {
	args := []string{u.Exe, "daemon"}
	if u.ConfigPath != "" {
		args = append(args, "--config", u.ConfigPath)
	}
	// Pin the directories ReadWritePaths= opens, whatever the service's
	// environment makes of the defaults.
	args = append(args, "--data-dir", u.Config.Torrent.DataDir, "--download-dir", u.Config.Torrent.DownloadDir)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = systemdQuote(a)
	}
	var rw []string
	for _, d := range u.writable() {
		rw = append(rw, systemdQuote(d))
	}

	var b strings.Builder
	b.WriteString("# Written by 'torrentclaw daemon install'; 'torrentclaw daemon uninstall' removes it.\n")
	b.WriteString("[Unit]\nDescription=torrentclaw daemon: stream torrents to browsers and VLC\n")
	if !u.User {
		b.WriteString("Wants=network-online.target\nAfter=network-online.target\n")
	}
	b.WriteString("\n[Service]\nType=exec\n")
	if !u.User {
		fmt.Fprintf(&b, "User=%s\n", u.RunAs)
	}
	fmt.Fprintf(&b, "ExecStart=%s\n", strings.Join(quoted, " "))
	b.WriteString("ExecReload=/bin/kill -HUP $MAINPID\n")
	b.WriteString("Restart=on-failure\nRestartSec=5s\n")
	// SIGTERM is a clean shutdown (deregister, save state, unmap ports).
	b.WriteString("KillSignal=SIGTERM\nTimeoutStopSec=30s\n")
	b.WriteString("\n# Sandbox: nothing but the daemon's own directories is writable.\n")
	b.WriteString("NoNewPrivileges=yes\nProtectSystem=strict\nPrivateTmp=yes\n")
	if u.User {
		// A user manager can only set up the sandbox in a user namespace.
		b.WriteString("PrivateUsers=yes\n")
	} else {
		b.WriteString("ProtectHome=read-only\nPrivateDevices=yes\nProtectKernelTunables=yes\nProtectKernelModules=yes\nProtectControlGroups=yes\n")
		b.WriteString("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\nRestrictNamespaces=yes\nLockPersonality=yes\n")
	}
	fmt.Fprintf(&b, "ReadWritePaths=%s\n", strings.Join(rw, " "))
	b.WriteString("UMask=0077\n")
	b.WriteString("\n[Install]\n")
	if u.User {
		b.WriteString("WantedBy=default.target\n")
	} else {
		b.WriteString("WantedBy=multi-user.target\n")
	}
	return b.String()
}

// systemdQuote quotes s for a systemd command line or path list: specifiers
// (%) and variables ($) are escaped, and words with spaces or quotes are
// double-quoted.
func systemdQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
