package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// daemon install --user writes a unit that systemd-analyze verify accepts
// without a single warning; uninstall removes it.
func TestDaemonInstallUserUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: systemd is absent here, so the unit cannot be verified")
	}
	configHome, dataHome := isolate(t)
	// Spaces and a percent sign in the data path exercise the quoting.
	data := filepath.Join(dataHome, "my data 100%")
	cfgPath := filepath.Join(configHome, "torrentclaw", "config.toml")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfgPath, "[torrent]\ndata_dir = \""+data+"\"\n")
	exe, err := os.Executable() // any executable file: verify checks ExecStart exists
	if err != nil {
		t.Fatal(err)
	}
	env, out, errOut := testEnv(filepath.Join(t.TempDir(), "none.sock"))
	root := newRoot(env)
	install := newDaemonInstallCmd(env, func(o *serviceOptions) error {
		o.Executable = func() (string, error) { return exe, nil }
		return runServiceInstall(o)
	})
	daemonCmd := newDaemonCmd(env, nil)
	daemonCmd.AddCommand(install, newDaemonUninstallCmd(env, nil))
	root.AddCommand(daemonCmd)
	root.SetArgs([]string{"daemon", "install", "--user"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("daemon install --user: %v (stderr %s)", err, errOut)
	}
	unit := filepath.Join(configHome, "systemd", "user", serviceName)
	body, err := os.ReadFile(unit)
	if err != nil {
		t.Fatalf("unit not written: %v", err)
	}
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "Restart=on-failure",
		"ReadWritePaths=\"" + strings.ReplaceAll(data, "%", "%%") + "\"", "ExecReload=/bin/kill -HUP $MAINPID", "WantedBy=default.target"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("unit lacks %q:\n%s", want, body)
		}
	}
	if !strings.Contains(out.String(), "systemctl --user enable --now torrentclaw") {
		t.Errorf("stdout = %q, want the enable command", out.String())
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("data dir not created for ReadWritePaths=: %v", err)
	}

	// The user manager needs a runtime directory; give it a private one.
	rt := t.TempDir()
	cmd := exec.Command(analyze, "--user", "verify", unit)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+rt)
	var vout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &vout, &vout
	err = cmd.Run()
	if err != nil || strings.Contains(vout.String(), "torrentclaw") {
		t.Errorf("systemd-analyze --user verify: %v\n%s\nunit:\n%s", err, vout.String(), body)
	}

	// A second install refuses to overwrite; uninstall removes the unit.
	env2, _, _ := testEnv(filepath.Join(t.TempDir(), "none.sock"))
	if code := run(t.Context(), env2, []string{"daemon", "install", "--user"}); code != exitError {
		t.Errorf("second install exit %d, want %d (exists)", code, exitError)
	}
	env3, out3, _ := testEnv(filepath.Join(t.TempDir(), "none.sock"))
	if code := run(t.Context(), env3, []string{"daemon", "uninstall", "--user"}); code != exitOK {
		t.Fatalf("uninstall exit %d", code)
	}
	if _, err := os.Stat(unit); !os.IsNotExist(err) {
		t.Errorf("unit still there after uninstall: %v", err)
	}
	if !strings.Contains(out3.String(), "disable --now") {
		t.Errorf("uninstall stdout = %q, want the disable command", out3.String())
	}
}

// A system unit runs as the given account with a read-only /home, and
// verifies too.
func TestDaemonInstallSystemUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: systemd is absent here, so the unit cannot be verified")
	}
	isolate(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env, _, errOut := testEnv(filepath.Join(t.TempDir(), "none.sock"))
	sys := t.TempDir()
	opts := newServiceOptions(env)
	opts.LoadConfig = env.LoadConfig
	opts.Executable = func() (string, error) { return exe, nil }
	opts.SystemDir, opts.RunAs = sys, "root"
	if err := runServiceInstall(opts); err != nil {
		t.Fatalf("install: %v (%s)", err, errOut)
	}
	unit := filepath.Join(sys, serviceName)
	body, _ := os.ReadFile(unit)
	for _, want := range []string{"User=root", "ProtectHome=read-only", "WantedBy=multi-user.target", "After=network-online.target"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("unit lacks %q:\n%s", want, body)
		}
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || strings.Contains(string(out), "torrentclaw") {
		t.Errorf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, out, body)
	}
}

func TestSystemdQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/torrentclaw": "/usr/bin/torrentclaw",
		"/data/my films":       `"/data/my films"`,
		"/data/100%":           "/data/100%%",
		`/a"b c`:               `"/a\"b c"`,
		"/x/$HOME":             "/x/$$HOME",
	} {
		if got := systemdQuote(in); got != want {
			t.Errorf("systemdQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
