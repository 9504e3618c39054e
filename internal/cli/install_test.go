package cli

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// installBinary builds the command with `go install` into a temporary GOBIN,
// as a user's `go install …@latest` would, and returns the binary's path.
// VCS stamping is forced on (the environment may set -buildvcs=false).
func installBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", "-buildvcs=true", "github.com/torrentclaw/cli/cmd/torrentclaw")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	return filepath.Join(gobin, "torrentclaw")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// An installed binary runs the demo from a directory that has no
// testdata/: the sample video is built in.
func TestInstalledDemoAndVersion(t *testing.T) {
	bin := installBinary(t)

	t.Run("demo from any directory", func(t *testing.T) {
		work := t.TempDir()
		cmd := exec.Command(bin, "demo", "--once", "--port", strconv.Itoa(freePort(t)), "--dir", filepath.Join(work, "state"))
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+work, "XDG_DATA_HOME="+work)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("torrentclaw demo --once in %s: %v\nstderr:\n%s", work, err, errOut.String())
		}
		if !strings.Contains(out.String(), "/stream?id=") || !strings.Contains(errOut.String(), "identical to sample.mp4") {
			t.Errorf("demo output = %q, stderr %q; want a stream URL and a checked sample", out.String(), errOut.String())
		}
	})

	t.Run("version shows the revision", func(t *testing.T) {
		root := filepath.Join("..", "..")
		rev, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
		if err != nil {
			t.Skipf("not a git checkout (git rev-parse: %v): no revision to compare", err)
		}
		if fi, err := os.Stat(filepath.Join(root, ".git")); err != nil || !fi.IsDir() {
			// cmd/go recognises a repository only by a .git directory.
			t.Skip("the checkout is a git worktree (.git is a file): go build records no revision there")
		}
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("torrentclaw version: %v", err)
		}
		want := strings.TrimSpace(string(rev))[:12]
		if !strings.Contains(string(out), want) {
			t.Errorf("torrentclaw version = %q, want the revision %s", out, want)
		}
	})
}
