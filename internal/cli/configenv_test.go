package cli

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/torrentclaw/cli/internal/config"
)

// Every TORRENTCLAW_<SECTION>_<KEY> variable is applied and `config show`
// names it as the value's source. The values come from the full fixture,
// which sets every key to a non-default value, so a new key is covered
// without editing this test.
func TestConfigShowEveryEnvOverride(t *testing.T) {
	full, err := config.Load(filepath.Join("..", "..", "testdata", "config", "full.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir) // no config file: defaults + environment
	t.Setenv(config.EnvConfig, "")
	for _, kv := range full.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	env, out, _ := testEnv(filepath.Join(dir, "none.sock"))
	if code := run(t.Context(), env, []string{"config", "show"}); code != exitOK {
		t.Fatalf("config show exit %d, stderr %s", code, env.Err)
	}
	shown := map[string]string{} // key -> line
	section := ""
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[]")
			continue
		}
		if k, _, ok := strings.Cut(line, " = "); ok {
			shown[section+"."+k] = line
		}
	}
	want := map[string]string{}
	for _, kv := range full.Redacted().Environ() {
		k, v, _ := strings.Cut(kv, "=")
		want[k] = v
	}
	for _, k := range config.Keys() {
		line, ok := shown[k.Name]
		switch {
		case !ok:
			t.Errorf("config show has no line for %s", k.Name)
		case !strings.HasSuffix(line, "# $"+k.Env):
			t.Errorf("config show: %q, want the source $%s", line, k.Env)
		}
	}

	// --env prints the same values back in environment form.
	env2, out2, _ := testEnv(filepath.Join(dir, "none.sock"))
	if code := run(t.Context(), env2, []string{"config", "show", "--env"}); code != exitOK {
		t.Fatalf("config show --env exit %d", code)
	}
	for _, line := range strings.Split(strings.TrimSpace(out2.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		if want[k] != v {
			t.Errorf("config show --env: %s=%q, want %q", k, v, want[k])
		}
	}
	if strings.Contains(out.String()+out2.String(), full.Origin.APIKey) {
		t.Error("config show printed the API key")
	}
}

// A bad value names the variable.
func TestConfigShowBadEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv(config.EnvConfig, "")
	t.Setenv("TORRENTCLAW_STREAM_PORT", "eighty")
	env, _, errOut := testEnv(filepath.Join(dir, "none.sock"))
	if code := run(t.Context(), env, []string{"config", "show"}); code != exitError {
		t.Fatalf("config show exit %d, want %d", code, exitError)
	}
	if !strings.Contains(errOut.String(), "$TORRENTCLAW_STREAM_PORT") {
		t.Errorf("stderr = %q, want it to name $TORRENTCLAW_STREAM_PORT", errOut.String())
	}
}

// A busy media port is reported with what set it: the flag or the variable.
func TestPortInUseNamesItsSource(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"env", port, nil, "set by $TORRENTCLAW_STREAM_PORT"},
		{"flag", "1", []string{"--port", port}, "set by the flag --port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t)
			t.Setenv("TORRENTCLAW_STREAM_LISTEN", "127.0.0.1")
			t.Setenv("TORRENTCLAW_STREAM_PORT", tc.env)
			env, _, errOut := testEnv(filepath.Join(t.TempDir(), "x.sock"))
			code := run(t.Context(), env, append([]string{"daemon"}, tc.args...))
			if code != exitError || !strings.Contains(errOut.String(), tc.want) || !strings.Contains(errOut.String(), "already in use") {
				t.Errorf("daemon on a busy port: exit %d, stderr %q; want %d and %q", code, errOut.String(), exitError, tc.want)
			}
		})
	}
}
