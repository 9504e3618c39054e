package clienttest

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// childEnv marks a test binary re-executed by [Isolate] inside a new network namespace.
const childEnv = "TORRENTCLAW_CLIENTTEST_NETNS"

// Isolate makes the calling test run inside a new network namespace holding only the
// loopback interface. Called in the test process (outside such a namespace) it re-executes
// the test binary for just this test (-test.run=^Name$) in a namespace of its own, relays the
// child's output, fails when the child fails, skips when it skipped, and returns false: the
// caller returns at once. Called in that child it brings lo up and returns true: the test
// body runs there, with every client and engine it starts.
//
// It skips (or fails, with TORRENTCLAW_E2E=required) when namespaces cannot be made: not
// root, or the kernel refuses CLONE_NEWNET. Call it first, from a top-level test.
func Isolate(t *testing.T) bool {
	t.Helper()
	if inNamespace(t) {
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("clienttest.Isolate(%s): call it from a top-level test", t.Name())
	}
	run := "^" + regexp.QuoteMeta(t.Name()) + "$"
	if f := flag.Lookup("test.run"); f != nil {
		// Keep a subtest filter (-run 'TestX/qbittorrent') for the child.
		if _, sub, ok := strings.Cut(f.Value.String(), "/"); ok {
			run += "/" + sub
		}
	}
	args := withSetFlags([]string{"-test.run=" + run, "-test.v=true", "-test.count=1"},
		"test.timeout", "test.short", "test.failfast")
	out, err := reexec(t, "test", args, func(line string) { fmt.Fprintln(t.Output(), line) })
	switch {
	case err != nil:
		t.Fatalf("clienttest: %s in a network namespace: %v", t.Name(), err)
	case strings.Contains(out, "--- SKIP: "+t.Name()+" "):
		t.Skipf("clienttest: %s was skipped inside its network namespace (see above)", t.Name())
	case !strings.Contains(out, "--- PASS: "+t.Name()+" "):
		t.Fatalf("clienttest: %s did not run inside its network namespace (no PASS line)", t.Name())
	}
	return false
}

// inNamespace reports whether this process is the child that [Isolate] or [IsolateBench]
// started; there it checks that the namespace holds only lo and brings lo up.
func inNamespace(t testing.TB) bool {
	t.Helper()
	if os.Getenv(childEnv) != "1" {
		return false
	}
	if !onlyLoopback() {
		t.Fatalf("clienttest: %s=1 but this process is not in a loopback-only network namespace", childEnv)
	}
	if out, err := exec.Command(ipPath(), "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("clienttest: ip link set lo up: %v: %s", err, out)
	}
	return true
}

// withSetFlags appends to args each named test flag the caller's command line set, so the
// child runs under the same timeout and switches.
func withSetFlags(args []string, names ...string) []string {
	for _, name := range names {
		if f := flag.Lookup(name); f != nil && f.Value.String() != f.DefValue {
			args = append(args, "-"+name+"="+f.Value.String())
		}
	}
	return args
}

// reexec runs this test binary again with args, as the child (childEnv=1) in a new network
// namespace, killed when t ends or this process dies. It hands every line of the child's
// combined output to relay as it comes, and returns the end of that output (all of it, or
// at least its last 32 KiB) and the child's exit error. It skips (or fails, with TORRENTCLAW_E2E=required) when this
// process is not root or the child cannot start; what names the kind of run in that message.
func reexec(t testing.TB, what string, args []string, relay func(line string)) (string, error) {
	t.Helper()
	if !namespacesSupported {
		skipOrFail(t, "real BitTorrent clients run only in Linux network namespaces")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "creating a network namespace for real BitTorrent clients needs root")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = namespaceProcAttr() // sysproc_*.go
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		skipOrFail(t, fmt.Sprintf("cannot start the %s in a new network namespace: %v", what, err))
	}
	var tail bytes.Buffer // the child's last lines, for the verdict
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			relay(line)
			tail.WriteString(line + "\n")
			if tail.Len() > 64<<10 {
				tail.Next(tail.Len() - 32<<10)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	return tail.String(), err
}

// Required reports whether TORRENTCLAW_E2E=required, under which missing prerequisites
// fail instead of skipping.
func Required() bool { return os.Getenv("TORRENTCLAW_E2E") == "required" }

// skipOrFail ends the test: it skips it, or fails it under TORRENTCLAW_E2E=required.
func skipOrFail(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (TORRENTCLAW_E2E=required)", why)
	}
	t.Skip("skipping: " + why)
}

// Need skips (or fails, with TORRENTCLAW_E2E=required) unless every named program is
// installed; .ci/run installs them (Debian packages qbittorrent-nox, transmission-daemon,
// aria2, opentracker).
func Need(t testing.TB, programs ...string) {
	t.Helper()
	for _, p := range programs {
		if _, err := exec.LookPath(p); err != nil {
			skipOrFail(t, fmt.Sprintf("%s is not installed (.ci/run installs it)", p))
		}
	}
}

// onlyLoopback reports whether the process's network namespace has only lo; /proc/net/dev
// is per namespace.
func onlyLoopback() bool {
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 3 {
		return false
	}
	for _, l := range lines[2:] {
		name, _, _ := strings.Cut(l, ":")
		if strings.TrimSpace(name) != "lo" {
			return false
		}
	}
	return true
}

func requireIsolated(t testing.TB, what string) {
	t.Helper()
	if !onlyLoopback() {
		t.Fatalf("clienttest: %s runs only inside a loopback-only network namespace (use Isolate)", what)
	}
}

func ipPath() string {
	if p, err := exec.LookPath("ip"); err == nil {
		return p
	}
	return "/usr/sbin/ip"
}
