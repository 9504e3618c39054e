package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// isolateEnv points every variable config reads at a fresh, empty home, so
// defaults do not depend on the machine running the test.
func isolateEnv(t *testing.T) (home string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("HOME", home)
	for _, k := range []string{"XDG_CONFIG_HOME", "XDG_DATA_HOME", EnvConfig, EnvAPIKey} {
		t.Setenv(k, "")
	}
	return home
}

func noEnv(string) (string, bool) { return "", false }

// writeFile writes data to name in a fresh temp dir with mode perm.
func writeFile(t *testing.T, name, data string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // WriteFile's perm is masked by umask
		t.Fatal(err)
	}
	return p
}

// schemaKeys lists every "section.key" of Config, in order.
func schemaKeys() []string {
	var keys []string
	root := reflect.TypeFor[Config]()
	for i := range root.NumField() {
		sec := root.Field(i)
		for j := range sec.Type.NumField() {
			keys = append(keys, tomlName(sec)+"."+tomlName(sec.Type.Field(j)))
		}
	}
	return keys
}

// fileKeys lists the "section.key" pairs set in a TOML document.
func fileKeys(t *testing.T, data []byte) []string {
	t.Helper()
	var m map[string]map[string]any
	if _, err := toml.Decode(string(data), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for s, kv := range m {
		for k := range kv {
			keys = append(keys, s+"."+k)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestDefault(t *testing.T) {
	home := isolateEnv(t)
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	data := filepath.Join(home, ".local", "share", "torrentclaw")
	for _, tc := range []struct{ name, got, want string }{
		{"data_dir", c.Torrent.DataDir, data},
		{"download_dir", c.Torrent.DownloadDir, filepath.Join(data, "downloads")},
		{"hls.dir", c.HLS.Dir, filepath.Join(data, "hls")},
		{"listen", c.Stream.Listen, "0.0.0.0"},
	} {
		if tc.got != tc.want {
			t.Errorf("Default() %s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if c.Stream.Port != 11818 || c.Stream.RequireStreamToken || c.Stream.TokenTTL.Std() != 6*time.Hour ||
		c.Stream.TokenGrace.Std() != time.Minute || c.Stream.MaxReaders != 64 || c.HLS.SegmentSeconds != 2 ||
		c.HLS.IdleTimeout.Std() != 2*time.Minute || c.UPnP.Enabled || c.UPnP.Lease.Std() != time.Hour ||
		!c.Torrent.Seed || !c.Torrent.DHT || c.Log.Level != LevelInfo || c.Log.Format != "text" {
		t.Errorf("Default() = %+v, differs from DESIGN.md", c)
	}

	t.Setenv("XDG_DATA_HOME", "/xdg/data")
	if got, want := Default().Torrent.DataDir, "/xdg/data/torrentclaw"; got != want {
		t.Errorf("Default() data_dir with $XDG_DATA_HOME = %q, want %q", got, want)
	}
	t.Setenv("XDG_DATA_HOME", "relative") // not absolute: ignored, as the XDG spec says
	if got := Default().Torrent.DataDir; got != data {
		t.Errorf("Default() data_dir with relative $XDG_DATA_HOME = %q, want %q", got, data)
	}
}

func TestDefaultNoHome(t *testing.T) {
	isolateEnv(t)
	t.Setenv("HOME", "")
	err := Default().Validate()
	if err == nil || !strings.Contains(err.Error(), "torrent.data_dir: must be set") {
		t.Errorf("Default().Validate() without a home = %v, want a torrent.data_dir error", err)
	}
}

// TestExample is the drift check of STYLE.md: the example decodes strictly,
// validates, equals Default, sets and documents every key, and the copy at
// the repository root is identical.
func TestExample(t *testing.T) {
	isolateEnv(t)
	ex := Example()

	root, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, ex) {
		t.Errorf("config.example.toml differs from internal/config/example.toml; run: cp internal/config/example.toml config.example.toml")
	}

	c, err := load("config.example.toml", ex, noEnv)
	if err != nil {
		t.Fatalf("load(example) = %v", err)
	}
	if want := Default(); !reflect.DeepEqual(c, want) {
		t.Errorf("load(example) = %+v\nwant Default() = %+v", c, want)
	}

	want := schemaKeys()
	slices.Sort(want)
	if got := fileKeys(t, ex); !slices.Equal(got, want) {
		t.Errorf("example keys = %v\nwant every schema key %v", got, want)
	}

	// Every key line has a comment line right above it.
	lines := strings.Split(string(ex), "\n")
	for i, l := range lines {
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		if i == 0 || !strings.HasPrefix(lines[i-1], "# ") {
			t.Errorf("example line %d %q has no comment above it", i+1, l)
		}
	}
}

func TestFullFixture(t *testing.T) {
	isolateEnv(t)
	got, err := Load("../../testdata/config/full.toml")
	if err != nil {
		t.Fatalf("Load(full.toml) = %v", err)
	}
	want := Config{
		Origin: Origin{
			APIURL:  "https://torrentclaw.example/base",
			APIKey:  "tc_live_0123456789abcdef",
			AgentID: "8d6f2a8e-3f5b-4a9e-9c1d-2b7f0e4c5a61",
			Name:    "living room",
		},
		Stream: Stream{
			Listen:             "127.0.0.1",
			Port:               8080,
			RequireStreamToken: true,
			TokenTTL:           Duration(150 * time.Minute),
			TokenGrace:         Duration(90 * time.Second),
			CORSOrigins:        []string{"https://torrentclaw.example", "http://192.168.1.10:3000"},
			MaxReaders:         8,
			MaxConns:           256,
			MaxConnsPerClient:  16,
			PublicHost:         "tc.example.net:8443",
			TLSPort:            8443,
			TLSCertFile:        "/etc/torrentclaw/cert.pem",
			TLSKeyFile:         "/etc/torrentclaw/key.pem",
		},
		Torrent: Torrent{
			ListenPort:   0,
			ListenAddr:   "192.168.1.10",
			UTP:          false,
			Encryption:   EncryptionRequire,
			DownloadDir:  "/srv/media/downloads",
			DataDir:      "/var/lib/torrentclaw",
			MaxActive:    2,
			Seed:         false,
			SeedRatio:    0.5,
			UploadRate:   512 * KiB,
			DownloadRate: 10 * MiB,
			DHT:          false,
			Trackers:     []string{"udp://tracker.example:1337/announce", "https://tracker.example/announce"},
			MaxFiles:     20000,
			MaxNameBytes: 8 * MiB,
		},
		HLS: HLS{
			FFmpegPath:     "/usr/local/bin/ffmpeg",
			FFprobePath:    "ffprobe",
			SegmentSeconds: 6,
			MaxSessions:    2,
			MaxTranscodes:  0,
			IdleTimeout:    Duration(30 * time.Second),
			Dir:            "/var/cache/torrentclaw/hls",
			MaxDisk:        3 * GiB / 2,
		},
		UPnP:    UPnP{Enabled: true, Lease: Duration(30 * time.Minute)},
		Metrics: Metrics{Listen: "127.0.0.1:9464"},
		Log:     Log{Level: LevelDebug, Format: "json"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load(full.toml) =\n%+v\nwant\n%+v", got, want)
	}

	// The fixture sets every key, and none to its default, so a new key
	// cannot go untested.
	data, err := os.ReadFile("../../testdata/config/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	keys := schemaKeys()
	slices.Sort(keys)
	if got := fileKeys(t, data); !slices.Equal(got, keys) {
		t.Errorf("full.toml keys = %v\nwant every schema key %v", got, keys)
	}
	def := reflect.ValueOf(Default())
	full := reflect.ValueOf(got)
	for i := range def.NumField() {
		for j := range def.Field(i).NumField() {
			if reflect.DeepEqual(def.Field(i).Field(j).Interface(), full.Field(i).Field(j).Interface()) {
				t.Errorf("full.toml sets %s to its default", schemaKeys()[indexOf(def, i, j)])
			}
		}
	}
}

func indexOf(v reflect.Value, i, j int) int {
	n := 0
	for k := range i {
		n += v.Field(k).NumField()
	}
	return n + j
}

func TestEncodeRoundTrip(t *testing.T) {
	home := isolateEnv(t)
	full, err := Load("../../testdata/config/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    Config
	}{
		{"default", Default()},
		{"full", full},
		{"empty slices", func() Config {
			c := Default()
			c.Stream.CORSOrigins = []string{}
			return c
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Encode(&buf, tc.c); err != nil {
				t.Fatalf("Encode() = %v", err)
			}
			p := filepath.Join(home, "enc.toml")
			if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := Load(p)
			if err != nil {
				t.Fatalf("Load(Encode(c)) = %v\n%s", err, buf.Bytes())
			}
			want := tc.c
			if len(want.Stream.CORSOrigins) == 0 {
				want.Stream.CORSOrigins = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Load(Encode(c)) = %+v\nwant %+v\n%s", got, want, buf.Bytes())
			}
		})
	}
}

func TestEncodeFormat(t *testing.T) {
	isolateEnv(t)
	var buf bytes.Buffer
	if err := Encode(&buf, Default()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[stream]\n", `token_ttl = "6h"`, `token_grace = "1m"`, `max_disk = "2GiB"`,
		`upload_rate = "0"`, `level = "info"`, "port = 11818",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("Encode(Default()) lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	c := Config{Origin: Origin{APIURL: "https://x.example", APIKey: "secret-key"}}
	c.Stream.CORSOrigins = []string{"https://a.example"}
	r := c.Redacted()
	if r.Origin.APIKey != "REDACTED" {
		t.Errorf("Redacted().Origin.APIKey = %q, want REDACTED", r.Origin.APIKey)
	}
	if c.Origin.APIKey != "secret-key" {
		t.Errorf("Redacted() changed the original key to %q", c.Origin.APIKey)
	}
	r.Stream.CORSOrigins[0] = "changed"
	if c.Stream.CORSOrigins[0] != "https://a.example" {
		t.Errorf("Redacted() shares CORSOrigins with the original")
	}
	var buf bytes.Buffer
	if err := Encode(&buf, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "secret-key") {
		t.Errorf("Encode(Redacted()) shows the key:\n%s", buf.String())
	}
	if got := (Config{}).Redacted().Origin.APIKey; got != "" {
		t.Errorf("Redacted() of an unset key = %q, want empty", got)
	}
}

func TestPath(t *testing.T) {
	home := isolateEnv(t)
	tests := []struct {
		name      string
		flag      string
		envConfig string
		xdgConfig string
		want      string
	}{
		{"home default", "", "", "", filepath.Join(home, ".config", "torrentclaw", "config.toml")},
		{"xdg", "", "", "/xdg", "/xdg/torrentclaw/config.toml"},
		{"relative xdg ignored", "", "", "xdg", filepath.Join(home, ".config", "torrentclaw", "config.toml")},
		{"env beats xdg", "", "/env/c.toml", "/xdg", "/env/c.toml"},
		{"flag beats env", "/flag/c.toml", "/env/c.toml", "/xdg", "/flag/c.toml"},
		{"flag alone", "rel.toml", "", "", "rel.toml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvConfig, tc.envConfig)
			t.Setenv("XDG_CONFIG_HOME", tc.xdgConfig)
			if got := Path(tc.flag); got != tc.want {
				t.Errorf("Path(%q) = %q, want %q", tc.flag, got, tc.want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	home := isolateEnv(t)

	// Nothing at the default path: defaults.
	c, err := Load(Path(""))
	if err != nil {
		t.Fatalf("Load(default path, missing) = %v, want defaults", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("Load(default path, missing) = %+v, want Default()", c)
	}
	if _, err := Load(""); err != nil {
		t.Errorf(`Load("") = %v, want defaults`, err)
	}

	// A file named explicitly must exist.
	missing := filepath.Join(home, "nope.toml")
	t.Setenv(EnvConfig, missing)
	if _, err := Load(Path("")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(%s) = %v, want a not-exist error naming the file", missing, err)
	}
	if _, err := Load(Path(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(--config %s) = %v, want a not-exist error", missing, err)
	}
}

func TestEnvOverride(t *testing.T) {
	isolateEnv(t)
	p := writeFile(t, "c.toml", "[origin]\napi_url = \"https://w.example\"\napi_key = \"from-file\"\n", 0o600)

	c, err := Load(p)
	if err != nil || c.Origin.APIKey != "from-file" {
		t.Fatalf("Load() = %q, %v; want from-file, nil", c.Origin.APIKey, err)
	}

	t.Setenv(EnvAPIKey, "from-env")
	if c, err = Load(p); err != nil || c.Origin.APIKey != "from-env" {
		t.Errorf("Load() with $%s = %q, %v; want from-env, nil", EnvAPIKey, c.Origin.APIKey, err)
	}

	// The env var alone satisfies "api_key required with api_url".
	p2 := writeFile(t, "c.toml", "[origin]\napi_url = \"https://w.example\"\n", 0o600)
	if c, err = Load(p2); err != nil || c.Origin.APIKey != "from-env" {
		t.Errorf("Load() without file key = %q, %v; want from-env, nil", c.Origin.APIKey, err)
	}

	// A bad key from the environment is blamed on the environment, and the
	// message does not echo it.
	t.Setenv(EnvAPIKey, "has space")
	_, err = Load(p)
	if err == nil || !strings.Contains(err.Error(), "$"+EnvAPIKey+": origin.api_key:") || strings.Contains(err.Error(), "has space") {
		t.Errorf("Load() with a bad $%s = %v", EnvAPIKey, err)
	}

	// Empty means unset.
	t.Setenv(EnvAPIKey, "")
	if c, err = Load(p); err != nil || c.Origin.APIKey != "from-file" {
		t.Errorf("Load() with empty $%s = %q, %v; want from-file", EnvAPIKey, c.Origin.APIKey, err)
	}
}

func TestCheckPermissions(t *testing.T) {
	t.Parallel()
	withKey := "[origin]\napi_url = \"https://w.example\"\napi_key = \"k\"\n"
	tests := []struct {
		name     string
		data     string
		perm     os.FileMode
		insecure bool
	}{
		{"key 0644", withKey, 0o644, true},
		{"key 0640", withKey, 0o640, true},
		{"key 0604", withKey, 0o604, true},
		{"key 0620 group-writable", withKey, 0o620, true},
		{"key 0600", withKey, 0o600, false},
		{"key 0400", withKey, 0o400, false},
		{"no key 0644", "[stream]\nport = 1234\n", 0o644, false},
		{"empty key 0644", "[origin]\napi_key = \"\"\n", 0o644, false},
		{"unparsable 0644", "[origin\n", 0o644, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, "config.toml", tc.data, tc.perm)
			err := CheckPermissions(p)
			if got := errors.Is(err, ErrInsecurePermissions); got != tc.insecure {
				t.Fatalf("CheckPermissions(%s mode %04o) = %v, want insecure %v", tc.name, tc.perm, err, tc.insecure)
			}
			if tc.insecure && (!strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "chmod 600")) {
				t.Errorf("CheckPermissions() = %q, want the path and the fix", err)
			}
			if !tc.insecure && err != nil {
				t.Errorf("CheckPermissions() = %v, want nil", err)
			}
		})
	}
	if err := CheckPermissions(filepath.Join(t.TempDir(), "missing.toml")); err != nil {
		t.Errorf("CheckPermissions(missing) = %v, want nil", err)
	}
}
