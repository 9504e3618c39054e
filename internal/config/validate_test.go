package config

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// validConfig is a valid config that does not depend on the environment.
func validConfig() Config {
	c := defaults()
	c.Torrent.DataDir = "/data"
	c.resolvePaths()
	return c
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *Config)
		key    string // "" = valid
		msg    string
	}{
		{"valid", func(c *Config) {}, "", ""},

		{"api_url ok", func(c *Config) { c.Origin.APIURL, c.Origin.APIKey = "https://w.example/x", "k" }, "", ""},
		{"api_url http port", func(c *Config) { c.Origin.APIURL, c.Origin.APIKey = "http://10.0.0.1:3000", "k" }, "", ""},
		{"api_url scheme", func(c *Config) { c.Origin.APIURL, c.Origin.APIKey = "ws://w.example", "k" }, "origin.api_url", "http:// or https://"},
		{"api_url no host", func(c *Config) { c.Origin.APIURL, c.Origin.APIKey = "https:///path", "k" }, "origin.api_url", "must have a host"},
		{"api_url relative", func(c *Config) { c.Origin.APIURL, c.Origin.APIKey = "w.example", "k" }, "origin.api_url", "http:// or https://"},
		{"api_url credentials", func(c *Config) { c.Origin.APIURL, c.Origin.APIKey = "https://u:p@w.example", "k" }, "origin.api_url", "credentials"},
		{"api_url query", func(c *Config) { c.Origin.APIURL, c.Origin.APIKey = "https://w.example/?k=v", "k" }, "origin.api_url", "query"},
		{"api_url bad port", func(c *Config) { c.Origin.APIURL, c.Origin.APIKey = "https://w.example:99999", "k" }, "origin.api_url", "port"},
		{"api_url unparsable", func(c *Config) { c.Origin.APIURL, c.Origin.APIKey = "https://w.example/%zz", "k" }, "origin.api_url", "not a valid URL"},
		{"api_key missing", func(c *Config) { c.Origin.APIURL = "https://w.example" }, "origin.api_key", "required when origin.api_url is set"},
		{"api_key space", func(c *Config) { c.Origin.APIKey = "a b" }, "origin.api_key", "printable ASCII"},
		{"api_key control", func(c *Config) { c.Origin.APIKey = "a\nb" }, "origin.api_key", "printable ASCII"},
		{"agent_id long", func(c *Config) { c.Origin.AgentID = strings.Repeat("a", 129) }, "origin.agent_id", "longer than 128"},
		{"name control", func(c *Config) { c.Origin.Name = "tv\x00" }, "origin.name", "control characters"},
		{"name unicode", func(c *Config) { c.Origin.Name = "salón" }, "", ""},

		{"listen ipv6", func(c *Config) { c.Stream.Listen = "::" }, "", ""},
		{"listen hostname", func(c *Config) { c.Stream.Listen = "localhost" }, "", ""},
		{"listen empty", func(c *Config) { c.Stream.Listen = "" }, "stream.listen", "must not be empty"},
		{"listen with port", func(c *Config) { c.Stream.Listen = "0.0.0.0:80" }, "stream.listen", "not an IP address or host name"},
		{"listen bad label", func(c *Config) { c.Stream.Listen = "-bad.example" }, "stream.listen", "not an IP address"},
		{"port 0", func(c *Config) { c.Stream.Port = 0 }, "stream.port", "0 out of range 1-65535"},
		{"port high", func(c *Config) { c.Stream.Port = 70000 }, "stream.port", "70000 out of range 1-65535"},
		{"ttl zero", func(c *Config) { c.Stream.TokenTTL = 0 }, "stream.token_ttl", "must be positive"},
		{"grace zero ok", func(c *Config) { c.Stream.TokenGrace = 0 }, "", ""},
		{"grace negative", func(c *Config) { c.Stream.TokenGrace = Duration(-time.Second) }, "stream.token_grace", "must not be negative"},
		{"grace not below ttl", func(c *Config) { c.Stream.TokenGrace = Duration(6 * time.Hour) }, "stream.token_grace", "shorter than stream.token_ttl (6h)"},
		{"cors ok", func(c *Config) {
			c.Stream.CORSOrigins = []string{"https://a.example", "http://192.168.1.2:8080", "http://[::1]:3000"}
		}, "", ""},
		{"cors path", func(c *Config) { c.Stream.CORSOrigins = []string{"https://a.example/app"} }, "stream.cors_origins", "without a path"},
		{"cors slash", func(c *Config) { c.Stream.CORSOrigins = []string{"https://a.example/"} }, "stream.cors_origins", `write it as "https://a.example"`},
		{"cors case", func(c *Config) { c.Stream.CORSOrigins = []string{"HTTPS://A.example"} }, "stream.cors_origins", `write it as "https://a.example"`},
		{"cors default port", func(c *Config) { c.Stream.CORSOrigins = []string{"https://a.example:443"} }, "stream.cors_origins", `write it as "https://a.example"`},
		{"cors no scheme", func(c *Config) { c.Stream.CORSOrigins = []string{"a.example"} }, "stream.cors_origins", "scheme://host"},
		{"cors wildcard", func(c *Config) { c.Stream.CORSOrigins = []string{"*"} }, "stream.cors_origins", "wildcard"},
		{"cors ftp", func(c *Config) { c.Stream.CORSOrigins = []string{"ftp://a.example"} }, "stream.cors_origins", "scheme://host"},
		{"max_readers", func(c *Config) { c.Stream.MaxReaders = 0 }, "stream.max_readers", "at least 1"},
		{"max_conns", func(c *Config) { c.Stream.MaxConns = 0 }, "stream.max_conns", "at least 1"},
		{"max_conns_per_client", func(c *Config) { c.Stream.MaxConnsPerClient = -1 }, "stream.max_conns_per_client", "at least 1"},
		{"max_files", func(c *Config) { c.Torrent.MaxFiles = 0 }, "torrent.max_files", "at least 1"},
		{"encryption", func(c *Config) { c.Torrent.Encryption = "always" }, "torrent.encryption", `"always": want "plaintext-first", "prefer" or "require"`},
		{"max_name_bytes", func(c *Config) { c.Torrent.MaxNameBytes = 0 }, "torrent.max_name_bytes", "at least 1"},
		{"public_host ok", func(c *Config) { c.Stream.PublicHost = "tv.example.net" }, "", ""},
		{"public_host port", func(c *Config) { c.Stream.PublicHost = "203.0.113.7:443" }, "", ""},
		{"public_host ipv6", func(c *Config) { c.Stream.PublicHost = "2001:db8::1" }, "", ""},
		{"public_host url", func(c *Config) { c.Stream.PublicHost = "https://tv.example" }, "stream.public_host", "not a host name"},
		{"public_host bad port", func(c *Config) { c.Stream.PublicHost = "tv.example:0" }, "stream.public_host", "out of range"},
		{"tls ok", func(c *Config) {
			c.Stream.TLSPort, c.Stream.TLSCertFile, c.Stream.TLSKeyFile = 11819, "/c.pem", "/k.pem"
		}, "", ""},
		{"tls no cert", func(c *Config) { c.Stream.TLSPort, c.Stream.TLSKeyFile = 11819, "/k.pem" }, "stream.tls_cert_file", "required"},
		{"tls cert only", func(c *Config) { c.Stream.TLSPort, c.Stream.TLSCertFile = 11819, "/c.pem" }, "stream.tls_key_file", "required"},
		{"tls files no port", func(c *Config) { c.Stream.TLSCertFile, c.Stream.TLSKeyFile = "/c.pem", "/k.pem" }, "stream.tls_port", "required"},
		{"tls same port", func(c *Config) {
			c.Stream.TLSPort, c.Stream.TLSCertFile, c.Stream.TLSKeyFile = 11818, "/c.pem", "/k.pem"
		}, "stream.tls_port", "also stream.port"},
		{"tls port range", func(c *Config) {
			c.Stream.TLSPort, c.Stream.TLSCertFile, c.Stream.TLSKeyFile = 65536, "/c.pem", "/k.pem"
		}, "stream.tls_port", "out of range 0-65535"},

		{"listen_port 0 ok", func(c *Config) { c.Torrent.ListenPort = 0 }, "", ""},
		{"listen_port range", func(c *Config) { c.Torrent.ListenPort = 65536 }, "torrent.listen_port", "out of range 0-65535"},
		{"listen_address ip", func(c *Config) { c.Torrent.ListenAddr = "127.0.0.1" }, "", ""},
		{"listen_address not ip", func(c *Config) { c.Torrent.ListenAddr = "localhost" }, "torrent.listen_address", "not an IP address"},
		{"listen_port collides", func(c *Config) { c.Torrent.ListenPort = 11818 }, "torrent.listen_port", "media listener"},
		{"data_dir relative", func(c *Config) { c.Torrent.DataDir = "data" }, "torrent.data_dir", "absolute"},
		{"download_dir relative", func(c *Config) { c.Torrent.DownloadDir = "dl" }, "torrent.download_dir", "absolute"},
		{"max_active", func(c *Config) { c.Torrent.MaxActive = 0 }, "torrent.max_active", "at least 1"},
		{"seed_ratio nan", func(c *Config) { c.Torrent.SeedRatio = math.NaN() }, "torrent.seed_ratio", "finite"},
		{"seed_ratio inf", func(c *Config) { c.Torrent.SeedRatio = math.Inf(1) }, "torrent.seed_ratio", "finite"},
		{"seed_ratio 0 ok", func(c *Config) { c.Torrent.SeedRatio = 0 }, "", ""},
		{"upload_rate", func(c *Config) { c.Torrent.UploadRate = -1 }, "torrent.upload_rate", "negative"},
		{"download_rate", func(c *Config) { c.Torrent.DownloadRate = -1 }, "torrent.download_rate", "negative"},
		{"trackers ok", func(c *Config) {
			c.Torrent.Trackers = []string{"udp://t.example:6969/announce", "wss://t.example/a"}
		}, "", ""},
		{"tracker scheme", func(c *Config) { c.Torrent.Trackers = []string{"ftp://t.example/secretpasskey"} }, "torrent.trackers", "entry 1: must be a udp"},
		{"tracker no host", func(c *Config) { c.Torrent.Trackers = []string{"udp:///announce"} }, "torrent.trackers", "must have a host"},

		{"ffmpeg bare ok", func(c *Config) { c.HLS.FFmpegPath = "ffmpeg7" }, "", ""},
		{"ffprobe relative", func(c *Config) { c.HLS.FFprobePath = "./ffprobe" }, "hls.ffprobe_path", "program name"},
		{"segment high", func(c *Config) { c.HLS.SegmentSeconds = 31 }, "hls.segment_seconds", "31 out of range 1-30"},
		{"max_sessions", func(c *Config) { c.HLS.MaxSessions = 0 }, "hls.max_sessions", "at least 1"},
		{"max_transcodes 0 ok", func(c *Config) { c.HLS.MaxTranscodes = 0 }, "", ""},
		{"idle_timeout", func(c *Config) { c.HLS.IdleTimeout = 0 }, "hls.idle_timeout", "must be positive"},
		{"hls dir relative", func(c *Config) { c.HLS.Dir = "hls" }, "hls.dir", "absolute"},
		{"max_disk", func(c *Config) { c.HLS.MaxDisk = -1 }, "hls.max_disk", "negative"},

		{"lease short", func(c *Config) { c.UPnP.Lease = Duration(30 * time.Second) }, "upnp.lease", "30s out of range 1m-168h"},
		{"lease long", func(c *Config) { c.UPnP.Lease = Duration(200 * time.Hour) }, "upnp.lease", "out of range"},
		{"level", func(c *Config) { c.Log.Level = 3 }, "log.level", `"info+3"`},
		{"format", func(c *Config) { c.Log.Format = "logfmt" }, "log.format", `want "text" or "json"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.change(&c)
			err := c.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			ps := problemsOf(t, err)
			if len(ps) != 1 {
				t.Fatalf("Validate() = %v, want one problem with %s", err, tc.key)
			}
			want := tc.key + ": "
			if got := ps[0].Error(); !strings.HasPrefix(got, want) || !strings.Contains(got, tc.msg) {
				t.Errorf("Validate() = %q, want %q...%q", got, want, tc.msg)
			}
		})
	}
}

// TestValidateAllAtOnce checks that a config with many problems reports all
// of them in one error, in schema order, each prefixed with its key.
func TestValidateAllAtOnce(t *testing.T) {
	t.Parallel()
	err := Config{Log: Log{Level: LevelInfo}}.Validate()
	wantKeys := []string{
		"stream.listen", "stream.port", "stream.token_ttl", "stream.max_readers",
		"torrent.max_active", "torrent.data_dir",
		"hls.segment_seconds", "hls.max_sessions", "hls.idle_timeout",
		"upnp.lease", "log.format",
	}
	ps := problemsOf(t, err)
	got := map[string]bool{}
	for _, p := range ps {
		got[p.Key] = true
		if !strings.HasPrefix(p.Error(), p.Key+": ") {
			t.Errorf("problem %q does not start with its key", p.Error())
		}
		if p.File != "" || p.Line != 0 {
			t.Errorf("Validate() problem %v has file %q line %d, want none", p, p.File, p.Line)
		}
	}
	for _, k := range wantKeys {
		if !got[k] {
			t.Errorf("Validate(Config{}) lacks %s in:\n%v", k, err)
		}
	}
	if lines := strings.Count(err.Error(), "\n") + 1; lines != len(ps) {
		t.Errorf("Validate() message has %d lines, want one per problem (%d)", lines, len(ps))
	}
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Errorf("errors.As(Validate(), *KeyError) = false")
	}
}

func TestValidateNeverEchoesSecrets(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Origin.APIURL = "ftp://user:hunter2@w.example/?key=hunter2"
	c.Origin.APIKey = "hunter2 with space"
	c.Torrent.Trackers = []string{"gopher://t.example/hunter2"}
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate() = %v, want errors that do not echo secrets", err)
	}
}
