package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// problemsOf returns the KeyErrors joined in err.
func problemsOf(t *testing.T, err error) []*KeyError {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*KeyError
	for _, e := range errs {
		var ke *KeyError
		if !errors.As(e, &ke) {
			t.Fatalf("error %q is not a *KeyError", e)
		}
		out = append(out, ke)
	}
	return out
}

// want is one expected problem: its line, key and a piece of its message.
type want struct {
	line int
	key  string
	msg  string
}

func checkProblems(t *testing.T, file string, err error, wants []want) {
	t.Helper()
	got := problemsOf(t, err)
	if len(got) != len(wants) {
		t.Fatalf("got %d problems, want %d:\n%v", len(got), len(wants), err)
	}
	for i, w := range wants {
		g := got[i]
		if g.File != file || g.Line != w.line || g.Key != w.key || !strings.Contains(g.Err.Error(), w.msg) {
			t.Errorf("problem %d = {%s %d %s %q}, want {%s %d %s ...%q...}", i, g.File, g.Line, g.Key, g.Err, file, w.line, w.key, w.msg)
		}
		// The message a user reads names file, line and key.
		prefix := file + ":"
		if w.line > 0 {
			prefix = fmt.Sprintf("%s:%d:", file, w.line)
		}
		if !strings.HasPrefix(g.Error(), prefix) || !strings.Contains(g.Error(), w.key) {
			t.Errorf("problem %d message %q lacks %q and %q", i, g.Error(), prefix, w.key)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		wants []want
	}{
		{"top level key", "\nfoo = 1\n", []want{{2, "foo", "unknown key"}}},
		{"top level table", "[stream]\nport = 1234\n\n[bogus]\nx = 1\n", []want{{4, "bogus", "unknown key"}}},
		{"section typo", "\n[stram]\nport = 1\n", []want{{2, "stram", "did you mean [stream]?"}}},
		{"in section", "[stream]\nport = 1234\nprot = 1\n", []want{{3, "stream.prot", "did you mean stream.port?"}}},
		{"wrong case", "[stream]\nPort = 1234\n", []want{{2, "stream.Port", "did you mean stream.port?"}}},
		{"wrong case section", "[Stream]\nport = 1234\n", []want{{1, "Stream", "did you mean [stream]?"}}},
		{"wrong section", "[stream]\nlisten_port = 1\n", []want{{2, "stream.listen_port", "did you mean torrent.listen_port?"}}},
		{"leaf at top level", "# c\nport = 1\n", []want{{2, "port", "did you mean stream.port?"}}},
		{"no silly suggestion", "foo = 1\n", []want{{1, "foo", "unknown key"}}},
		{"nested table", "[stream]\nport = 1234\n[stream.extra]\nx = 1\n", []want{{3, "stream.extra", "unknown key"}}},
		{"nested dotted", "[hls]\n\nnew.thing = true\n", []want{{3, "hls.new", "unknown key"}}},
		{"dotted at top", "\n\nzap.zip.zop = 1\n", []want{{3, "zap", "unknown key"}}},
		{"inline table", "[log]\nlevel = \"info\"\nextra = { a = 1 }\n", []want{{3, "log.extra", "unknown key"}}},
		{"array of tables", "\n[[peers]]\naddr = \"x\"\n", []want{{2, "peers", "unknown key"}}},
		{"quoted key", "[stream]\n\"port \" = 1\n", []want{{2, `stream."port "`, "unknown key"}}},
		{"several", "a = 1\n[stream]\nb = 2\nport = 1234\n[upnp]\nc = 3\n", []want{
			{1, "a", "unknown key"}, {3, "stream.b", "unknown key"}, {6, "upnp.c", "unknown key"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load("my.toml", []byte(tc.in), noEnv)
			checkProblems(t, "my.toml", err, tc.wants)
			for _, p := range problemsOf(t, err) {
				if !errors.Is(p, ErrUnknownKey) {
					t.Errorf("problem %v does not wrap ErrUnknownKey", p)
				}
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		wants []want
	}{
		{"string for int", "[stream]\nport = \"11818\"\n", []want{{2, "stream.port", "must be an integer, not a string"}}},
		{"float for int", "[stream]\nport = 1.5\n", []want{{2, "stream.port", "must be an integer, not a float"}}},
		{"int for bool", "[torrent]\nseed = 1\n", []want{{2, "torrent.seed", "must be true or false"}}},
		{"int for string", "[origin]\nname = 5\n", []want{{2, "origin.name", "must be a string, not an integer"}}},
		{"string for float", "[torrent]\nseed_ratio = \"2\"\n", []want{{2, "torrent.seed_ratio", "must be a number"}}},
		{"int duration", "[stream]\ntoken_ttl = 30\n", []want{{2, "stream.token_ttl", `duration string such as "30s"`}}},
		{"bad duration", "[hls]\nidle_timeout = \"2 minutes\"\n", []want{{2, "hls.idle_timeout", `invalid duration "2 minutes"`}}},
		{"bad size", "[hls]\nmax_disk = \"2 gigs\"\n", []want{{2, "hls.max_disk", "unknown unit"}}},
		{"negative size", "[torrent]\nupload_rate = -1\n", []want{{2, "torrent.upload_rate", "invalid size"}}},
		{"fractional bytes", "[torrent]\nupload_rate = \"1.5B\"\n", []want{{2, "torrent.upload_rate", "not a whole number"}}},
		{"float size", "[torrent]\nupload_rate = 1.5\n", []want{{2, "torrent.upload_rate", "not a float"}}},
		{"bad level", "[log]\nlevel = \"verbose\"\n", []want{{2, "log.level", `invalid log level "verbose"`}}},
		{"string for array", "[torrent]\ntrackers = \"udp://x:1\"\n", []want{{2, "torrent.trackers", "must be an array of strings, not a string"}}},
		{"array of ints", "[stream]\ncors_origins = [\"https://a.b\", 2]\n", []want{{2, "stream.cors_origins", "entry 2 must be a string"}}},
		{"date", "[origin]\nname = 1979-05-27\n", []want{{2, "origin.name", "not a date-time"}}},
		{"section not table", "stream = 5\n", []want{{1, "stream", "must be a table ([stream]), not an integer"}}},
		{"section array of tables", "[[log]]\nlevel = \"info\"\n", []want{{1, "log", "must be a table"}}},
		{"dotted section", "\nstream.port = \"x\"\n", []want{{2, "stream.port", "must be an integer"}}},
		{"inline section", "stream = { listen = \"a b\" }\n", []want{{1, "stream.listen", "not an IP address or host name"}}},
		{"huge int", "[stream]\nport = 9223372036854775807\n", []want{{2, "stream.port", "out of range 1-65535"}}},
		{"several at once", "[stream]\nport = \"x\"\ntoken_ttl = 5\n[log]\nformat = 1\n", []want{
			{2, "stream.port", "integer"}, {3, "stream.token_ttl", "duration"}, {5, "log.format", "string"},
		}},
		{"decode and validation together", "[stream]\nport = \"x\"\nmax_readers = 0\n", []want{
			{2, "stream.port", "integer"}, {3, "stream.max_readers", "at least 1"},
		}},
		{"syntax", "[stream]\nport = 1\nport = 2\n", []want{{3, "", "already been defined"}}},
		{"syntax unterminated", "[stream]\nlisten = \"x\n", []want{{2, "", "newlines"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := load("bad.toml", []byte(tc.in), noEnv)
			checkProblems(t, "bad.toml", err, tc.wants)
		})
	}
}

// TestInvalidFixture checks that Load reports every validation problem of a
// file at once, each with its line.
func TestInvalidFixture(t *testing.T) {
	isolateEnv(t)
	const file = "../../testdata/config/invalid.toml"
	_, err := Load(file)
	checkProblems(t, file, err, []want{
		{4, "origin.api_url", "http:// or https://"},
		{7, "stream.listen", "not an IP address or host name"},
		{8, "stream.port", "70000 out of range 1-65535"},
		{9, "stream.token_ttl", "must be positive"},
		{10, "stream.cors_origins", `entry 1 "https://example.com/": write it as "https://example.com"`},
		{10, "stream.cors_origins", "entry 2 \"*\": wildcard"},
		{11, "stream.max_readers", "at least 1"},
		{12, "stream.tls_cert_file", `"cert.pem" must be an absolute path`},
		{15, "torrent.listen_port", "-1 out of range 0-65535"},
		{16, "torrent.data_dir", "must be an absolute path"},
		{17, "torrent.max_active", "at least 1"},
		{18, "torrent.seed_ratio", "0 or more"},
		{19, "torrent.trackers", "entry 1: must be a udp"},
		{22, "hls.ffmpeg_path", "program name"},
		{23, "hls.segment_seconds", "0 out of range 1-30"},
		{24, "hls.max_sessions", "at least 1"},
		{25, "hls.max_transcodes", "must not be negative"},
		{26, "hls.idle_timeout", "must be positive"},
		{29, "upnp.lease", "10s out of range 1m-168h"},
		{32, "log.format", `"yaml"`},
		// Not in the file: no line, listed last.
		{0, "origin.api_key", "required when origin.api_url is set"},
		{0, "stream.tls_key_file", "required when stream.tls_port or stream.tls_cert_file is set"},
		{0, "stream.tls_port", "required when stream.tls_cert_file or stream.tls_key_file is set"},
		// download_dir and hls.dir derive from the bad data_dir: not repeated.
	})
	if strings.Contains(err.Error(), "magnet:") {
		t.Errorf("error echoes a tracker URL:\n%v", err)
	}
}

// TestLoadFile checks the path-level behaviour of Load on a real file.
func TestLoadFile(t *testing.T) {
	home := isolateEnv(t)
	p := writeFile(t, "c.toml", "[torrent]\ndata_dir = \"~/tc\"\n\n[hls]\nffmpeg_path = \"~/bin/ffmpeg\"\n", 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	for _, tc := range []struct{ name, got, want string }{
		{"data_dir", c.Torrent.DataDir, home + "/tc"},
		{"download_dir follows data_dir", c.Torrent.DownloadDir, home + "/tc/downloads"},
		{"hls.dir follows data_dir", c.HLS.Dir, home + "/tc/hls"},
		{"ffmpeg_path", c.HLS.FFmpegPath, home + "/bin/ffmpeg"},
	} {
		if tc.got != tc.want {
			t.Errorf("Load() %s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}

	if err := os.WriteFile(p, []byte("[stream]\nport = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	checkProblems(t, p, err, []want{{2, "stream.port", "0 out of range 1-65535"}})
}
