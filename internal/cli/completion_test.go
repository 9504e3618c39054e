package cli

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Completing a task ID asks the daemon; with no daemon it answers at once
// with nothing; enum flags offer their values.
func TestCompletion(t *testing.T) {
	fd := newFakeDaemon()
	env, _, _ := testEnv(serve(t, fd))
	if _, err := runStreamOnce(t, env); err != nil {
		t.Fatal(err)
	}
	env2, out, _ := testEnv(serve(t, fd))
	if code := run(t.Context(), env2, []string{"__complete", "token", "revoke", ""}); code != exitOK {
		t.Fatalf("__complete exit %d", code)
	}
	if !strings.Contains(out.String(), "task-1") {
		t.Errorf("completion of token revoke = %q, want task-1", out.String())
	}

	env3, out3, _ := testEnv(filepath.Join(t.TempDir(), "no-daemon.sock"))
	start := time.Now()
	if code := run(t.Context(), env3, []string{"__complete", "token", "issue", ""}); code != exitOK {
		t.Fatalf("__complete without a daemon exit %d", code)
	}
	if strings.Contains(out3.String(), "task-") || time.Since(start) > 10*time.Second {
		t.Errorf("completion without a daemon = %q after %s, want nothing, at once", out3.String(), time.Since(start))
	}

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "stream", "x", "--open="}, players},
		{[]string{"__complete", "daemon", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
	} {
		env4, out4, _ := testEnv(filepath.Join(t.TempDir(), "no-daemon.sock"))
		if code := run(t.Context(), env4, tc.args); code != exitOK {
			t.Fatalf("%q exit %d", tc.args, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(out4.String(), w) {
				t.Errorf("%q = %q, want %q", tc.args, out4.String(), w)
			}
		}
	}
}
