package cli

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/config"
)

// parse runs args through a root that holds only cmd (built with a runF
// that captures its options).
func parse(t *testing.T, env *Env, cmd *cobra.Command, args ...string) error {
	t.Helper()
	root := newRoot(env)
	root.AddCommand(cmd)
	root.SetArgs(args)
	return root.ExecuteContext(t.Context())
}

// parseOK checks parse's error against wantErr: a usage error when wanted (and then false:
// there are no options to check), none otherwise (failing the test at once).
func parseOK(t *testing.T, args []string, err error, wantErr bool) bool {
	t.Helper()
	if wantErr {
		if !isUsage(err) {
			t.Errorf("parse(%q) = %v, want a usage error", args, err)
		}
		return false
	}
	if err != nil {
		t.Fatalf("parse(%q) = %v", args, err)
	}
	return true
}

func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

func TestStreamParsing(t *testing.T) {
	type parsed struct {
		Source, Title   string
		FileIndex       int
		HLS, JSON, Term bool
		Open            string
		Audio, Subs     string
		Burn            bool
	}
	tests := []struct {
		name    string
		args    []string
		want    parsed
		wantErr bool
	}{
		{"defaults", []string{"stream", "magnet:?xt=urn:btih:abc"}, parsed{Source: "magnet:?xt=urn:btih:abc", FileIndex: -1}, false},
		{"all flags", []string{"stream", "x.torrent", "--file", "2", "--hls", "--json", "--open", "--title", "Sintel"},
			parsed{Source: "x.torrent", Title: "Sintel", FileIndex: 2, HLS: true, JSON: true, Open: "vlc"}, false},
		{"open a player", []string{"stream", "a", "--open=mpv"}, parsed{Source: "a", FileIndex: -1, Open: "mpv"}, false},
		{"open the browser", []string{"stream", "a", "--open=browser"}, parsed{Source: "a", FileIndex: -1, Open: "browser"}, false},
		{"open an unknown player", []string{"stream", "a", "--open=winamp"}, parsed{}, true},
		{"flags before arg", []string{"stream", "--file=0", "abc"}, parsed{Source: "abc", FileIndex: 0}, false},
		{"no source", []string{"stream"}, parsed{}, true},
		{"two sources", []string{"stream", "a", "b"}, parsed{}, true},
		{"file below -1", []string{"stream", "a", "--file", "-2"}, parsed{}, true},
		{"file not a number", []string{"stream", "a", "--file", "two"}, parsed{}, true},
		{"unknown flag", []string{"stream", "a", "--vlc"}, parsed{}, true},
		{"tracks", []string{"stream", "a", "--hls", "--audio", "spa", "--subs", "en", "--burn-subs"},
			parsed{Source: "a", FileIndex: -1, HLS: true, Audio: "spa", Subs: "en", Burn: true}, false},
		{"tracks without hls", []string{"stream", "a", "--audio", "spa"}, parsed{}, true},
		{"subs without hls", []string{"stream", "a", "--subs", "en"}, parsed{}, true},
		{"language with a quote", []string{"stream", "a", "--hls", "--subs", `e"n`}, parsed{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, _, _ := testEnv("")
			var got *streamOptions
			err := parse(t, env, newStreamCmd(env, func(o *streamOptions) error { got = o; return nil }), tc.args...)
			if !parseOK(t, tc.args, err, tc.wantErr) {
				return
			}
			p := parsed{got.Source, got.Title, got.FileIndex, got.HLS, got.JSON, got.Terminal, got.Open, got.Audio, got.Subs, got.BurnSubs}
			if p != tc.want {
				t.Errorf("parse(%q) = %+v, want %+v", tc.args, p, tc.want)
			}
			if got.Out != env.Out || got.Err != env.Err || got.Client == nil || got.StartDaemon == nil {
				t.Errorf("options miss their dependencies: %+v", got)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDaemonParsing(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	debug := config.LogLevel(-4)
	tests := []struct {
		name    string
		args    []string
		want    daemonOptions
		wantErr bool
	}{
		{"no flags", []string{"daemon"}, daemonOptions{}, false},
		{"config", []string{"--config", "/etc/tc.toml", "daemon"}, daemonOptions{ConfigPath: "/etc/tc.toml"}, false},
		{"listeners", []string{"daemon", "--listen", "127.0.0.1", "--port", "8080", "--tls-port", "8443"},
			daemonOptions{Listen: ptr("127.0.0.1"), Port: ptr(8080), TLSPort: ptr(8443)}, false},
		{"tls off", []string{"daemon", "--tls-port", "0"}, daemonOptions{TLSPort: ptr(0)}, false},
		{"require token", []string{"daemon", "--require-stream-token"}, daemonOptions{RequireStreamToken: ptr(true)}, false},
		{"require token false", []string{"daemon", "--require-stream-token=false"}, daemonOptions{RequireStreamToken: ptr(false)}, false},
		{"upnp", []string{"daemon", "--upnp"}, daemonOptions{UPnP: ptr(true)}, false},
		{"dirs relative", []string{"daemon", "--data-dir", "d", "--download-dir", "/dl"},
			daemonOptions{DataDir: ptr(filepath.Join(cwd, "d")), DownloadDir: ptr("/dl")}, false},
		{"log level", []string{"daemon", "--log-level", "debug"}, daemonOptions{LogLevel: &debug}, false},
		{"port zero", []string{"daemon", "--port", "0"}, daemonOptions{}, true},
		{"port too big", []string{"daemon", "--port", "70000"}, daemonOptions{}, true},
		{"tls port negative", []string{"daemon", "--tls-port", "-1"}, daemonOptions{}, true},
		{"bad log level", []string{"daemon", "--log-level", "loud"}, daemonOptions{}, true},
		{"empty data dir", []string{"daemon", "--data-dir", ""}, daemonOptions{}, true},
		{"argument", []string{"daemon", "now"}, daemonOptions{}, true},
		{"bool with value", []string{"daemon", "--upnp=maybe"}, daemonOptions{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, _, _ := testEnv("")
			var got *daemonOptions
			err := parse(t, env, newDaemonCmd(env, func(o *daemonOptions) error { got = o; return nil }), tc.args...)
			if !parseOK(t, tc.args, err, tc.wantErr) {
				return
			}
			tc.want.Err, tc.want.Version = env.Err, env.Version
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("parse(%q) =\n%+v, want\n%+v", tc.args, *got, tc.want)
			}
		})
	}
}

func TestDaemonConfigPrecedence(t *testing.T) {
	file := `
[origin]
api_url = "https://torrentclaw.example"
api_key = "file-key"

[stream]
listen = "127.0.0.1"
port = 2000

[torrent]
data_dir = "/srv/tc"

[upnp]
enabled = true
`
	tests := []struct {
		name    string
		args    []string // after "daemon"
		envPath bool     // $TORRENTCLAW_CONFIG points at the file
		envKey  string   // $TORRENTCLAW_API_KEY
		check   func(config.Config) string
	}{
		{"defaults without a file", nil, false, "", func(c config.Config) string {
			if c.Stream.Port != config.DefaultStreamPort || c.Stream.Listen != "0.0.0.0" || c.UPnP.Enabled {
				return "want the defaults"
			}
			return ""
		}},
		{"file over defaults", []string{"--config", "FILE"}, false, "", func(c config.Config) string {
			if c.Stream.Port != 2000 || c.Stream.Listen != "127.0.0.1" || !c.UPnP.Enabled || c.Origin.APIKey != "file-key" {
				return "want the file's values"
			}
			if c.Torrent.DownloadDir != "/srv/tc/downloads" {
				return "want the download dir derived from the file's data dir"
			}
			return ""
		}},
		{"env path", nil, true, "", func(c config.Config) string {
			if c.Stream.Port != 2000 {
				return "want the file named by $TORRENTCLAW_CONFIG"
			}
			return ""
		}},
		{"env over file", []string{"--config", "FILE"}, false, "env-key", func(c config.Config) string {
			if c.Origin.APIKey != "env-key" {
				return "want $TORRENTCLAW_API_KEY over the file"
			}
			return ""
		}},
		{"flags over file", []string{"--config", "FILE", "--port", "3000", "--upnp=false", "--require-stream-token", "--listen", "::1"}, false, "", func(c config.Config) string {
			if c.Stream.Port != 3000 || c.UPnP.Enabled || !c.Stream.RequireStreamToken || c.Stream.Listen != "::1" {
				return "want the flags' values"
			}
			return ""
		}},
		{"data dir flag moves derived dirs", []string{"--config", "FILE", "--data-dir", "/var/tc"}, false, "", func(c config.Config) string {
			if c.Torrent.DataDir != "/var/tc" || c.Torrent.DownloadDir != "/var/tc/downloads" || c.HLS.Dir != "/var/tc/hls" {
				return "want download and hls dirs under the new data dir"
			}
			return ""
		}},
		{"download dir flag", []string{"--config", "FILE", "--data-dir", "/var/tc", "--download-dir", "/media/dl"}, false, "", func(c config.Config) string {
			if c.Torrent.DownloadDir != "/media/dl" {
				return "want the download dir flag"
			}
			return ""
		}},
		{"log level flag", []string{"--config", "FILE", "--log-level", "error"}, false, "", func(c config.Config) string {
			if c.Log.Level.String() != "error" {
				return "want log level error"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			path := writeConfig(t, file, 0o600)
			if tc.envPath {
				t.Setenv(config.EnvConfig, path)
			}
			if tc.envKey != "" {
				t.Setenv(config.EnvAPIKey, tc.envKey)
			}
			args := []string{"daemon"}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "FILE", path))
			}
			env, _, _ := testEnv("")
			var cfg config.Config
			err := parse(t, env, newDaemonCmd(env, func(o *daemonOptions) error {
				var err error
				cfg, err = daemonConfig(o)
				return err
			}), args...)
			if err != nil {
				t.Fatalf("daemon %q: %v", args, err)
			}
			if msg := tc.check(cfg); msg != "" {
				t.Errorf("daemon %q: %s; got %+v", args, msg, cfg)
			}
		})
	}
}

func TestDaemonConfigErrors(t *testing.T) {
	isolate(t)
	env, _, _ := testEnv("")
	bad := writeConfig(t, "[stream]\nport = \"many\"\n", 0o600)
	err := parse(t, env, newDaemonCmd(env, func(o *daemonOptions) error { _, err := daemonConfig(o); return err }), "--config", bad, "daemon")
	if err == nil || !strings.Contains(err.Error(), "stream.port") {
		t.Errorf("daemon with a bad file = %v, want an error naming stream.port", err)
	}
	err = parse(t, env, newDaemonCmd(env, func(o *daemonOptions) error { _, err := daemonConfig(o); return err }), "--config", "/nonexistent/tc.toml", "daemon")
	if err == nil {
		t.Error("daemon with a missing --config file = nil error")
	}
	err = parse(t, env, newDaemonCmd(env, func(o *daemonOptions) error { _, err := daemonConfig(o); return err }), "daemon", "--listen", "not a host!")
	if err == nil || !strings.Contains(err.Error(), "stream.listen") {
		t.Errorf("daemon --listen 'not a host!' = %v, want an error naming stream.listen", err)
	}
}

func TestSimpleCommandParsing(t *testing.T) {
	type result = result0
	tests := []struct {
		name    string
		build   func(env *Env, got *result) *cobra.Command
		args    []string
		want    result
		wantErr bool
	}{
		{"status", statusCmd, []string{"status"}, result{}, false},
		{"status json", statusCmd, []string{"status", "--json"}, result{json: true}, false},
		{"status extra arg", statusCmd, []string{"status", "all"}, result{}, true},
		{"token issue", tokenCmd, []string{"token", "issue", "task-1"}, result{arg: "issue task-1"}, false},
		{"token issue json", tokenCmd, []string{"token", "issue", "--json", "task-1"}, result{arg: "issue task-1", json: true}, false},
		{"token issue no id", tokenCmd, []string{"token", "issue"}, result{}, true},
		{"token revoke", tokenCmd, []string{"token", "revoke", "task-2"}, result{arg: "revoke task-2"}, false},
		{"token revoke two ids", tokenCmd, []string{"token", "revoke", "a", "b"}, result{}, true},
		{"token unknown", tokenCmd, []string{"token", "rotate", "a"}, result{}, true},
		{"seed", seedCmd, []string{"seed", "movie.mkv"}, result{arg: "movie.mkv"}, false},
		{"seed json", seedCmd, []string{"seed", "--json", "dir/"}, result{arg: "dir/", json: true}, false},
		{"seed no path", seedCmd, []string{"seed"}, result{}, true},
		{"config check strict", configCmd, []string{"config", "check", "--strict"}, result{arg: "check", strict: true}, false},
		{"config show", configCmd, []string{"config", "show"}, result{arg: "show"}, false},
		{"config init force", configCmd, []string{"config", "init", "--force"}, result{arg: "init", force: true}, false},
		{"config unknown", configCmd, []string{"config", "edit"}, result{}, true},
		{"config init arg", configCmd, []string{"config", "init", "x"}, result{}, true},
		{"doctor json", doctorCmd, []string{"doctor", "--json"}, result{json: true}, false},
		{"doctor arg", doctorCmd, []string{"doctor", "now"}, result{}, true},
		{"version json", versionCmd, []string{"version", "--json"}, result{json: true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			env, _, _ := testEnv("")
			var got result
			err := parse(t, env, tc.build(env, &got), tc.args...)
			if !parseOK(t, tc.args, err, tc.wantErr) {
				return
			}
			if got != tc.want {
				t.Errorf("parse(%q) = %+v, want %+v", tc.args, got, tc.want)
			}
		})
	}
}

func statusCmd(env *Env, got *result0) *cobra.Command {
	return newStatusCmd(env, func(o *statusOptions) error { got.json = o.JSON; return nil })
}

// result0 aliases the table's result type so the builders can be
// top-level functions.
type result0 = struct {
	json, force, strict bool
	arg                 string
}

func tokenCmd(env *Env, got *result0) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Args: subcommandArgs, RunE: showHelp}
	cmd.AddCommand(
		newTokenIssueCmd(env, func(o *tokenIssueOptions) error { got.arg, got.json = "issue "+o.TaskID, o.JSON; return nil }),
		newTokenRevokeCmd(env, func(o *tokenRevokeOptions) error { got.arg = "revoke " + o.TaskID; return nil }),
	)
	return cmd
}

func seedCmd(env *Env, got *result0) *cobra.Command {
	return newSeedCmd(env, func(o *seedOptions) error { got.arg, got.json = o.Path, o.JSON; return nil })
}

func configCmd(env *Env, got *result0) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Args: subcommandArgs, RunE: showHelp}
	cmd.AddCommand(
		newConfigInitCmd(env, func(o *configInitOptions) error { got.arg, got.force = "init", o.Force; return nil }),
		newConfigShowCmd(env, func(o *configShowOptions) error { got.arg = "show"; return nil }),
		newConfigCheckCmd(env, func(o *configCheckOptions) error { got.arg, got.strict = "check", o.Strict; return nil }),
	)
	return cmd
}

func doctorCmd(env *Env, got *result0) *cobra.Command {
	return newDoctorCmd(env, func(o *doctorOptions) error { got.json = o.JSON; return nil })
}

func versionCmd(env *Env, got *result0) *cobra.Command {
	return newVersionCmd(env, func(o *versionOptions) error { got.json = o.JSON; return nil })
}

func TestConfigInitPathPrecedence(t *testing.T) {
	configHome, _ := isolate(t)
	tests := []struct {
		name, flag, env, want string
	}{
		{"default", "", "", filepath.Join(configHome, "torrentclaw", "config.toml")},
		{"env", "", "/env/tc.toml", "/env/tc.toml"},
		{"flag over env", "/flag/tc.toml", "/env/tc.toml", "/flag/tc.toml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(config.EnvConfig, tc.env)
			env, _, _ := testEnv("")
			var got string
			args := []string{"config", "init"}
			if tc.flag != "" {
				args = append([]string{"--config", tc.flag}, args...)
			}
			cmd := &cobra.Command{Use: "config"}
			cmd.AddCommand(newConfigInitCmd(env, func(o *configInitOptions) error { got = o.Path; return nil }))
			if err := parse(t, env, cmd, args...); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("config init path = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestExitCodes runs the real command tree: usage errors exit 2, other
// errors 1, each with exactly one line on stderr and nothing on stdout.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"unknown command", []string{"strem", "x"}, exitUsage},
		{"unknown flag", []string{"--verbose", "status"}, exitUsage},
		{"unknown subcommand", []string{"token", "rotate"}, exitUsage},
		{"missing arg", []string{"stream"}, exitUsage},
		{"bad flag value", []string{"stream", "a", "--file", "x"}, exitUsage},
		{"no daemon", []string{"status"}, exitError},
		{"token no daemon", []string{"token", "issue", "task-1"}, exitError},
		{"bad config", []string{"--config", "/nonexistent/tc.toml", "config", "check"}, exitError},
		{"seed missing path", []string{"seed", "/nonexistent/movie.mkv"}, exitError},
		{"stream missing torrent file", []string{"stream", "./nonexistent.torrent"}, exitError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			env, out, errOut := testEnv(filepath.Join(t.TempDir(), "none.sock"))
			code := run(t.Context(), env, tc.args)
			if code != tc.code {
				t.Errorf("run(%q) = %d, want %d (stderr %q)", tc.args, code, tc.code, errOut)
			}
			assertOneErrorLine(t, errOut.String())
			if out.String() != "" {
				t.Errorf("run(%q) wrote to stdout: %q", tc.args, out)
			}
		})
	}
}

func assertOneErrorLine(t *testing.T, stderr string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "torrentclaw: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr = %q, want one line starting with \"torrentclaw: \"", stderr)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Errorf("stderr has a stack trace: %q", stderr)
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"help"}, {"stream", "--help"}, {"token"}, {"completion", "bash"}} {
		env, out, errOut := testEnv("")
		if code := run(t.Context(), env, args); code != exitOK {
			t.Errorf("run(%q) = %d, want 0 (stderr %q)", args, code, errOut)
		}
		if out.String() == "" {
			t.Errorf("run(%q) printed nothing on stdout", args)
		}
	}
}

func TestVersionFrom(t *testing.T) {
	vcs := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
		for i := 0; i+1 < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	tests := []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"ldflags win", "v1.2.3", vcs("vcs.revision", "0123456789abcdef"), "v1.2.3"},
		{"go install @version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0"},
		{"checkout", "", vcs("vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-12-03T07:00:00Z", "vcs.modified", "false"), "dev-20261203070000-0123456789ab"},
		{"dirty checkout", "", vcs("vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-12-03T07:00:00Z", "vcs.modified", "true"), "dev-20261203070000-0123456789ab+dirty"},
		{"no vcs", "", vcs(), "dev"},
		{"no build info", "", nil, "dev"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionFrom(tc.stamped, tc.bi); got != tc.want {
				t.Errorf("versionFrom(%q, …) = %q, want %q", tc.stamped, got, tc.want)
			}
		})
	}
}
