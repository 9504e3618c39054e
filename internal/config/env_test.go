package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func envValues(t *testing.T, c Config) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, kv := range c.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// Every key is overridden by its TORRENTCLAW_<SECTION>_<KEY> variable, over
// the file, and its source names the variable.
func TestEnvOverridesEveryKey(t *testing.T) {
	full, err := Load("../../testdata/config/full.toml")
	if err != nil {
		t.Fatalf("Load(full.toml) = %v", err)
	}
	env := envValues(t, full)
	if len(env) != len(Keys()) || len(Keys()) != len(schemaKeys()) {
		t.Fatalf("%d environment values for %d keys (schema has %d)", len(env), len(Keys()), len(schemaKeys()))
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	// Over the defaults: the environment alone rebuilds the full config.
	got, src, err := loadSources("", nil, lookup)
	if err != nil {
		t.Fatalf("loadSources(env of full.toml) = %v", err)
	}
	if !reflect.DeepEqual(got, full) {
		t.Errorf("config from the environment =\n%+v\nwant full.toml's\n%+v", got, full)
	}
	for _, k := range Keys() {
		if got := src.Of(k.Name); got != "$"+k.Env {
			t.Errorf("source of %s = %q, want $%s", k.Name, got, k.Env)
		}
	}

	// Over a file that sets every key to its default: each variable (with
	// the keys it is only valid with) beats the file's value.
	companions := map[string][]string{
		"origin.api_url":       {"origin.api_key"},
		"stream.tls_port":      {"stream.tls_cert_file", "stream.tls_key_file"},
		"stream.tls_cert_file": {"stream.tls_port", "stream.tls_key_file"},
		"stream.tls_key_file":  {"stream.tls_port", "stream.tls_cert_file"},
	}
	file := []byte(EncodeString(t, Default()))
	for _, k := range Keys() {
		t.Run(k.Name, func(t *testing.T) {
			set := map[string]string{k.Env: env[k.Env]}
			for _, c := range companions[k.Name] {
				set[EnvName(c)] = env[EnvName(c)]
			}
			lookup := func(name string) (string, bool) { v, ok := set[name]; return v, ok }
			c, src, err := loadSources("c.toml", file, lookup)
			if err != nil {
				t.Fatalf("loadSources(%v) = %v", set, err)
			}
			if src.Of(k.Name) != "$"+k.Env {
				t.Errorf("source of %s = %q, want $%s", k.Name, src.Of(k.Name), k.Env)
			}
			sec, key, _ := strings.Cut(k.Name, ".")
			sv, _ := fieldByTag(reflect.ValueOf(c), sec)
			gotV, _ := fieldByTag(sv, key)
			fv, _ := fieldByTag(reflect.ValueOf(full), sec)
			wantV, _ := fieldByTag(fv, key)
			if !reflect.DeepEqual(gotV.Interface(), wantV.Interface()) {
				t.Errorf("%s=%q: %s = %v, want %v", k.Env, env[k.Env], k.Name, gotV, wantV)
			}
		})
	}
}

// EncodeString encodes c for a test.
func EncodeString(t *testing.T, c Config) string {
	t.Helper()
	var b strings.Builder
	if err := Encode(&b, c); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A bad value is an error naming the variable and the key.
func TestEnvBadValues(t *testing.T) {
	tests := []struct{ env, val string }{
		{"TORRENTCLAW_STREAM_PORT", "eighty"},
		{"TORRENTCLAW_STREAM_PORT", "70000"},
		{"TORRENTCLAW_TORRENT_DHT", "maybe"},
		{"TORRENTCLAW_TORRENT_SEED_RATIO", "x"},
		{"TORRENTCLAW_HLS_IDLE_TIMEOUT", "soon"},
		{"TORRENTCLAW_TORRENT_UPLOAD_RATE", "fast"},
		{"TORRENTCLAW_LOG_LEVEL", "loud"},
		{"TORRENTCLAW_METRICS_LISTEN", "9464"},
	}
	for _, tc := range tests {
		t.Run(tc.env+"="+tc.val, func(t *testing.T) {
			lookup := func(k string) (string, bool) {
				if k == tc.env {
					return tc.val, true
				}
				return "", false
			}
			_, err := load("", nil, lookup)
			var ke *KeyError
			if !errors.As(err, &ke) || ke.File != "$"+tc.env {
				t.Fatalf("load(%s=%q) error = %v, want a KeyError from $%s", tc.env, tc.val, err, tc.env)
			}
			key := strings.ToLower(strings.Replace(strings.TrimPrefix(tc.env, EnvPrefix), "_", ".", 1))
			if ke.Key != key {
				t.Errorf("KeyError.Key = %q, want %q", ke.Key, key)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"stream.port":                 "TORRENTCLAW_STREAM_PORT",
		"stream.require_stream_token": "TORRENTCLAW_STREAM_REQUIRE_STREAM_TOKEN",
		"origin.api_key":              "TORRENTCLAW_ORIGIN_API_KEY",
		"metrics.listen":              "TORRENTCLAW_METRICS_LISTEN",
		fmt.Sprint("torrent.", "dht"): "TORRENTCLAW_TORRENT_DHT",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
}
