package config

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config is the daemon's whole configuration. The TOML key of each field is
// in its tag; config.example.toml documents every key and its default.
type Config struct {
	Origin  Origin  `toml:"origin"`
	Stream  Stream  `toml:"stream"`
	Torrent Torrent `toml:"torrent"`
	HLS     HLS     `toml:"hls"`
	UPnP    UPnP    `toml:"upnp"`
	Metrics Metrics `toml:"metrics"`
	Log     Log     `toml:"log"`
}

// Origin is the [origin] section: the torrentclaw website that drives the
// daemon. An empty APIURL means standalone mode.
type Origin struct {
	APIURL  string `toml:"api_url"`  // base URL, http or https; "" = standalone
	APIKey  string `toml:"api_key"`  // bearer key; required with APIURL; $TORRENTCLAW_API_KEY overrides
	AgentID string `toml:"agent_id"` // "" = the daemon generates one and keeps it in DataDir
	Name    string `toml:"name"`     // "" = the host name
}

// Stream is the [stream] section: the media listener and stream tokens.
type Stream struct {
	Listen             string   `toml:"listen"`               // IP address or host name
	Port               int      `toml:"port"`                 // 1-65535
	RequireStreamToken bool     `toml:"require_stream_token"` // refuse tasks without a token
	TokenTTL           Duration `toml:"token_ttl"`            // token lifetime when the origin gives no expiry
	TokenGrace         Duration `toml:"token_grace"`          // old token validity after rotation; 0 = none
	CORSOrigins        []string `toml:"cors_origins"`         // extra allowed origins, "scheme://host[:port]"
	MaxReaders         int      `toml:"max_readers"`          // concurrent media readers before 503
	MaxConns           int      `toml:"max_conns"`            // open media connections, idle ones included
	MaxConnsPerClient  int      `toml:"max_conns_per_client"` // open media connections per client IP address
	PublicHost         string   `toml:"public_host"`          // host[:port] for "pub" URLs; "" = none
	TLSPort            int      `toml:"tls_port"`             // 0 = no TLS listener
	TLSCertFile        string   `toml:"tls_cert_file"`        // PEM certificate; required with TLSPort
	TLSKeyFile         string   `toml:"tls_key_file"`         // PEM key; required with TLSPort
}

// Torrent is the [torrent] section: the BitTorrent client.
type Torrent struct {
	ListenPort   int      `toml:"listen_port"`    // TCP and UDP; 0 = any free port
	ListenAddr   string   `toml:"listen_address"` // IP address of the BitTorrent listener; "" = all interfaces
	UTP          bool     `toml:"utp"`            // also uTP (over UDP); TCP is always on
	Encryption   string   `toml:"encryption"`     // "plaintext-first", "prefer" or "require"; see Encryption*
	DownloadDir  string   `toml:"download_dir"`   // "" = DataDir/downloads
	DataDir      string   `toml:"data_dir"`       // state, control socket; see [Default]
	MaxActive    int      `toml:"max_active"`     // tasks downloading at once
	Seed         bool     `toml:"seed"`           // upload to other peers
	SeedRatio    float64  `toml:"seed_ratio"`     // stop seeding a task at this upload/size ratio; 0 = no limit
	UploadRate   ByteSize `toml:"upload_rate"`    // bytes per second; 0 = unlimited
	DownloadRate ByteSize `toml:"download_rate"`  // bytes per second; 0 = unlimited
	DHT          bool     `toml:"dht"`            // use the mainline DHT
	Trackers     []string `toml:"trackers"`       // extra trackers added to every task
	MaxFiles     int      `toml:"max_files"`      // files in one torrent; more is refused
	MaxNameBytes ByteSize `toml:"max_name_bytes"` // total bytes of one torrent's file names and paths
}

// torrent.encryption values: BitTorrent's protocol encryption (message stream
// encryption), which hides the handshake and, with RC4, every byte from traffic shaping.
const (
	// EncryptionPlaintextFirst dials with a plain handshake and retries with encryption
	// when the peer refuses it; either kind is accepted.
	EncryptionPlaintextFirst = "plaintext-first"
	// EncryptionPrefer dials encrypted first and retries plain; either kind is accepted.
	EncryptionPrefer = "prefer"
	// EncryptionRequire makes and accepts only encrypted connections, RC4 throughout.
	EncryptionRequire = "require"
)

// HLS is the [hls] section: on-demand HLS for browsers.
type HLS struct {
	FFmpegPath     string   `toml:"ffmpeg_path"`     // "" = "ffmpeg" on PATH
	FFprobePath    string   `toml:"ffprobe_path"`    // "" = "ffprobe" on PATH
	SegmentSeconds int      `toml:"segment_seconds"` // target segment length, 1-30
	MaxSessions    int      `toml:"max_sessions"`    // HLS sessions at once
	MaxTranscodes  int      `toml:"max_transcodes"`  // sessions that re-encode video at once; 0 = copy only
	IdleTimeout    Duration `toml:"idle_timeout"`    // close a session unused this long
	Dir            string   `toml:"dir"`             // "" = DataDir/hls
	MaxDisk        ByteSize `toml:"max_disk"`        // cap on all session dirs; 0 = unlimited
}

// UPnP is the [upnp] section: router port mapping (opt-in).
type UPnP struct {
	Enabled bool     `toml:"enabled"`
	Lease   Duration `toml:"lease"` // mapping lifetime, renewed at half
}

// Metrics is the [metrics] section: Prometheus metrics (off by default).
type Metrics struct {
	// Listen is the host:port that serves /metrics, such as
	// "127.0.0.1:9464"; "" = off.
	Listen string `toml:"listen"`
}

// Log is the [log] section.
type Log struct {
	Level  LogLevel `toml:"level"`
	Format string   `toml:"format"` // "text" or "json"
}

// Default values that are not paths.
const (
	DefaultStreamPort  = 11818
	DefaultListenPort  = 42069
	defaultMaxReaders  = 64
	defaultMaxConns    = 512
	defaultMaxPerIP    = 64
	defaultMaxFiles    = 10000
	defaultMaxNames    = 4 * MiB
	defaultMaxActive   = 5
	defaultSeedRatio   = 2.0
	defaultSegmentSecs = 2
	defaultMaxSessions = 4
	defaultTranscodes  = 1
	defaultMaxDisk     = 2 * GiB
	defaultTokenTTL    = 6 * time.Hour
	defaultTokenGrace  = 60 * time.Second
	defaultIdleTimeout = 2 * time.Minute
	defaultLease       = time.Hour
)

// Default returns the configuration used when no file exists. Path defaults
// come from the environment:
//
//   - torrent.data_dir: $XDG_DATA_HOME/torrentclaw, else ~/.local/share/torrentclaw
//   - torrent.download_dir: <data_dir>/downloads
//   - hls.dir: <data_dir>/hls
//
// When neither $XDG_DATA_HOME nor a home directory is known, data_dir stays
// empty and [Config.Validate] asks for it.
func Default() Config {
	c := defaults()
	c.resolvePaths()
	return c
}

// defaults returns the defaults with the derived paths left empty, so that a
// file that sets only data_dir moves download_dir and hls.dir with it.
func defaults() Config {
	return Config{
		Stream: Stream{
			Listen:            "0.0.0.0",
			Port:              DefaultStreamPort,
			TokenTTL:          Duration(defaultTokenTTL),
			TokenGrace:        Duration(defaultTokenGrace),
			MaxReaders:        defaultMaxReaders,
			MaxConns:          defaultMaxConns,
			MaxConnsPerClient: defaultMaxPerIP,
		},
		Torrent: Torrent{
			ListenPort:   DefaultListenPort,
			UTP:          true,
			Encryption:   EncryptionPlaintextFirst,
			MaxActive:    defaultMaxActive,
			Seed:         true,
			SeedRatio:    defaultSeedRatio,
			DHT:          true,
			MaxFiles:     defaultMaxFiles,
			MaxNameBytes: defaultMaxNames,
		},
		HLS: HLS{
			SegmentSeconds: defaultSegmentSecs,
			MaxSessions:    defaultMaxSessions,
			MaxTranscodes:  defaultTranscodes,
			IdleTimeout:    Duration(defaultIdleTimeout),
			MaxDisk:        defaultMaxDisk,
		},
		UPnP: UPnP{Lease: Duration(defaultLease)},
		Log:  Log{Level: LevelInfo, Format: "text"},
	}
}

// resolvePaths expands a leading "~" in every path and fills the empty
// directory paths from their defaults.
func (c *Config) resolvePaths() {
	for _, p := range []*string{
		&c.Stream.TLSCertFile, &c.Stream.TLSKeyFile,
		&c.Torrent.DataDir, &c.Torrent.DownloadDir,
		&c.HLS.FFmpegPath, &c.HLS.FFprobePath, &c.HLS.Dir,
	} {
		*p = expandHome(*p)
	}
	if c.Torrent.DataDir == "" {
		c.Torrent.DataDir = defaultDataDir()
	}
	if c.Torrent.DataDir != "" {
		if c.Torrent.DownloadDir == "" {
			c.Torrent.DownloadDir = filepath.Join(c.Torrent.DataDir, "downloads")
		}
		if c.HLS.Dir == "" {
			c.HLS.Dir = filepath.Join(c.Torrent.DataDir, "hls")
		}
	}
}

// expandHome replaces a leading "~" or "~/" with the home directory. Without a
// home directory the path is left alone (and fails validation as relative).
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return p
	}
	return filepath.Join(home, p[1:])
}

// defaultDataDir is $XDG_DATA_HOME/torrentclaw, else
// ~/.local/share/torrentclaw, else "" (no home).
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "torrentclaw")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".local", "share", "torrentclaw")
	}
	return ""
}
