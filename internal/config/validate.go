package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Validation limits.
const (
	minSegmentSeconds = 1
	maxSegmentSeconds = 30
	minLease          = time.Minute
	maxLease          = 7 * 24 * time.Hour // the IGDv2 maximum
	maxIDLen          = 128
)

// Validate reports every problem with c at once, joined with [errors.Join].
// Each one is a [*KeyError] whose message starts with its key, such as
// "stream.port: 70000 out of range 1-65535". It returns nil when c is usable.
func (c Config) Validate() error {
	ps := c.problems()
	if len(ps) == 0 {
		return nil
	}
	return joinProblems(ps)
}

// problems lists what Validate reports, in schema order.
func (c Config) problems() []*KeyError {
	var ps []*KeyError
	add := func(key, format string, args ...any) {
		ps = append(ps, &KeyError{Key: key, Err: fmt.Errorf(format, args...)})
	}
	addErr := func(key string, err error) {
		if err != nil {
			ps = append(ps, &KeyError{Key: key, Err: err})
		}
	}

	// [origin]
	o := c.Origin
	if o.APIURL != "" {
		addErr("origin.api_url", checkAPIURL(o.APIURL))
		if o.APIKey == "" {
			add("origin.api_key", "required when origin.api_url is set (or set $%s)", EnvAPIKey)
		}
	}
	if o.APIKey != "" && !isToken(o.APIKey) {
		// Never echo the key.
		add("origin.api_key", "must be printable ASCII without spaces")
	}
	addErr("origin.agent_id", checkText(o.AgentID))
	addErr("origin.name", checkText(o.Name))

	// [stream]
	s := c.Stream
	if s.Listen == "" {
		add("stream.listen", `must not be empty (use "0.0.0.0" for every interface)`)
	} else if !isHost(s.Listen) {
		add("stream.listen", "%q is not an IP address or host name", s.Listen)
	}
	addErr("stream.port", checkPort(s.Port, 1))
	if s.TokenTTL <= 0 {
		add("stream.token_ttl", "%s must be positive", s.TokenTTL)
	}
	switch {
	case s.TokenGrace < 0:
		add("stream.token_grace", "%s must not be negative", s.TokenGrace)
	case s.TokenTTL > 0 && s.TokenGrace >= s.TokenTTL:
		add("stream.token_grace", "%s must be shorter than stream.token_ttl (%s)", s.TokenGrace, s.TokenTTL)
	}
	for i, origin := range s.CORSOrigins {
		if err := checkOrigin(origin); err != nil {
			add("stream.cors_origins", "entry %d %q: %v", i+1, origin, err)
		}
	}
	if s.MaxReaders < 1 {
		add("stream.max_readers", "%d must be at least 1", s.MaxReaders)
	}
	if s.MaxConns < 1 {
		add("stream.max_conns", "%d must be at least 1", s.MaxConns)
	}
	if s.MaxConnsPerClient < 1 {
		add("stream.max_conns_per_client", "%d must be at least 1", s.MaxConnsPerClient)
	}
	if s.PublicHost != "" {
		addErr("stream.public_host", checkHostPort(s.PublicHost))
	}
	addErr("stream.tls_port", checkPort(s.TLSPort, 0))
	if s.TLSPort != 0 && s.TLSPort == s.Port {
		add("stream.tls_port", "%d is also stream.port", s.TLSPort)
	}
	if s.TLSPort != 0 || s.TLSCertFile != "" || s.TLSKeyFile != "" {
		if s.TLSCertFile == "" {
			add("stream.tls_cert_file", "required when stream.tls_port or stream.tls_key_file is set")
		}
		if s.TLSKeyFile == "" {
			add("stream.tls_key_file", "required when stream.tls_port or stream.tls_cert_file is set")
		}
		if s.TLSPort == 0 {
			add("stream.tls_port", "required when stream.tls_cert_file or stream.tls_key_file is set")
		}
	}
	addErr("stream.tls_cert_file", checkAbs(s.TLSCertFile, false))
	addErr("stream.tls_key_file", checkAbs(s.TLSKeyFile, false))

	// [torrent]
	t := c.Torrent
	addErr("torrent.listen_port", checkPort(t.ListenPort, 0))
	if t.ListenPort != 0 && (t.ListenPort == s.Port || t.ListenPort == s.TLSPort) {
		add("torrent.listen_port", "%d is also used by the media listener", t.ListenPort)
	}
	if t.ListenAddr != "" {
		if _, err := netip.ParseAddr(t.ListenAddr); err != nil {
			add("torrent.listen_address", "%q is not an IP address (empty: all interfaces)", t.ListenAddr)
		}
	}
	// A directory derived from a bad data_dir is bad for the same reason:
	// report data_dir alone.
	var dataDirErr error
	if t.DataDir == "" {
		dataDirErr = errors.New("must be set: no $XDG_DATA_HOME or home directory to default to")
	} else {
		dataDirErr = checkAbs(t.DataDir, false)
	}
	addErr("torrent.data_dir", dataDirErr)
	checkDir := func(key, dir string) {
		switch {
		case dataDirErr != nil && (dir == "" || t.DataDir != "" && strings.HasPrefix(dir, t.DataDir)):
		case dir == "":
			add(key, "must be set")
		default:
			addErr(key, checkAbs(dir, false))
		}
	}
	checkDir("torrent.download_dir", t.DownloadDir)
	switch t.Encryption {
	case EncryptionPlaintextFirst, EncryptionPrefer, EncryptionRequire:
	default:
		add("torrent.encryption", "%q: want %q, %q or %q", t.Encryption,
			EncryptionPlaintextFirst, EncryptionPrefer, EncryptionRequire)
	}
	if t.MaxFiles < 1 {
		add("torrent.max_files", "%d must be at least 1", t.MaxFiles)
	}
	if t.MaxNameBytes < 1 {
		add("torrent.max_name_bytes", "%s must be at least 1 byte", t.MaxNameBytes)
	}
	if t.MaxActive < 1 {
		add("torrent.max_active", "%d must be at least 1", t.MaxActive)
	}
	if math.IsNaN(t.SeedRatio) || math.IsInf(t.SeedRatio, 0) || t.SeedRatio < 0 {
		add("torrent.seed_ratio", "%v must be a finite number, 0 or more", t.SeedRatio)
	}
	if t.UploadRate < 0 {
		add("torrent.upload_rate", "%d must not be negative", t.UploadRate)
	}
	if t.DownloadRate < 0 {
		add("torrent.download_rate", "%d must not be negative", t.DownloadRate)
	}
	for i, tr := range t.Trackers {
		if err := checkTracker(tr); err != nil {
			// Tracker URLs may carry a passkey: name the entry, not the URL.
			add("torrent.trackers", "entry %d: %v", i+1, err)
		}
	}

	// [hls]
	h := c.HLS
	addErr("hls.ffmpeg_path", checkAbs(h.FFmpegPath, true))
	addErr("hls.ffprobe_path", checkAbs(h.FFprobePath, true))
	if h.SegmentSeconds < minSegmentSeconds || h.SegmentSeconds > maxSegmentSeconds {
		add("hls.segment_seconds", "%d out of range %d-%d", h.SegmentSeconds, minSegmentSeconds, maxSegmentSeconds)
	}
	if h.MaxSessions < 1 {
		add("hls.max_sessions", "%d must be at least 1", h.MaxSessions)
	}
	if h.MaxTranscodes < 0 {
		add("hls.max_transcodes", "%d must not be negative", h.MaxTranscodes)
	}
	if h.IdleTimeout <= 0 {
		add("hls.idle_timeout", "%s must be positive", h.IdleTimeout)
	}
	checkDir("hls.dir", h.Dir)
	if h.MaxDisk < 0 {
		add("hls.max_disk", "%d must not be negative", h.MaxDisk)
	}

	// [metrics]
	if l := c.Metrics.Listen; l != "" {
		host, port, err := net.SplitHostPort(l)
		switch {
		case err != nil:
			add("metrics.listen", `%q is not host:port (for example "127.0.0.1:9464")`, l)
		case host != "" && !isHost(host):
			add("metrics.listen", "%q is not an IP address or host name", host)
		default:
			n, err := strconv.Atoi(port)
			if err != nil {
				add("metrics.listen", "port %q is not a number", port)
			} else {
				addErr("metrics.listen", checkPort(n, 0))
			}
		}
	}

	// [upnp]
	if l := c.UPnP.Lease.Std(); l < minLease || l > maxLease {
		add("upnp.lease", "%s out of range %s-%s", c.UPnP.Lease, Duration(minLease), Duration(maxLease))
	}

	// [log]
	if !c.Log.Level.valid() {
		add("log.level", "%q: %v", c.Log.Level, errBadLevel)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format", `%q: want "text" or "json"`, c.Log.Format)
	}
	return ps
}

func checkPort(p, lowest int) error {
	if p < lowest || p > 65535 {
		return fmt.Errorf("%d out of range %d-65535", p, lowest)
	}
	return nil
}

// checkAPIURL accepts an absolute http(s) URL with a host, no credentials, no
// query and no fragment. Messages never echo the URL: it might hold a secret.
func checkAPIURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must start with http:// or https://")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("must have a host")
	case u.User != nil:
		return errors.New("must not contain credentials (put the key in origin.api_key)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return errors.New("must not have a query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("has an invalid port")
		}
	}
	return nil
}

// checkOrigin accepts exactly what a browser sends in an Origin header:
// lowercase "scheme://host[:port]" for http or https, without a path.
func checkOrigin(s string) error {
	const want = `want "scheme://host[:port]", such as "https://example.com"`
	if s == "*" || s == "null" {
		return errors.New("wildcard and null origins are not allowed; list each origin")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return errors.New(want)
	}
	if canonical := u.Scheme + "://" + strings.ToLower(u.Host); s != canonical {
		if strings.EqualFold(strings.TrimSuffix(s, "/"), canonical) {
			return fmt.Errorf("write it as %q: browsers send that form", canonical)
		}
		return errors.New(want + ", without a path")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return errors.New("invalid port")
		}
		if u.Scheme == "http" && p == "80" || u.Scheme == "https" && p == "443" {
			return fmt.Errorf("write it as %q: browsers leave out the default port", u.Scheme+"://"+strings.ToLower(u.Hostname()))
		}
	}
	if !isHost(strings.Trim(u.Hostname(), "[]")) {
		return errors.New("invalid host")
	}
	return nil
}

// checkTracker accepts udp, http(s) and ws(s) URLs with a host.
func checkTracker(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("is not a valid URL")
	}
	switch u.Scheme {
	case "udp", "http", "https", "ws", "wss":
	default:
		return errors.New("must be a udp, http, https, ws or wss URL")
	}
	if u.Hostname() == "" {
		return errors.New("must have a host")
	}
	return nil
}

// checkHostPort accepts "host" or "host:port"; host is an IP or a host name.
func checkHostPort(s string) error {
	if isHost(s) {
		return nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil || !isHost(h) || strings.Contains(p, "/") {
		return fmt.Errorf("%q is not a host name, IP address or host:port", s)
	}
	if err := checkPortString(p); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
}

func checkPortString(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q out of range 1-65535", p)
	}
	return nil
}

// isHost reports whether s is an IP address or an RFC 1123 host name.
func isHost(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// checkAbs accepts "" and absolute paths; with bareName, also a program name
// without a directory (looked up on PATH).
func checkAbs(p string, bareName bool) error {
	if p == "" || filepath.IsAbs(p) {
		return nil
	}
	if bareName && !strings.ContainsRune(p, filepath.Separator) && !strings.ContainsRune(p, '/') {
		return nil
	}
	if bareName {
		return fmt.Errorf("%q must be an absolute path, a path starting with ~/, or a program name", p)
	}
	return fmt.Errorf("%q must be an absolute path or start with ~/", p)
}

// isToken reports whether s is printable ASCII without spaces, so it can go
// in an Authorization header.
func isToken(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// checkText accepts short text without control characters.
func checkText(s string) error {
	if len(s) > maxIDLen {
		return fmt.Errorf("longer than %d bytes", maxIDLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("must not contain control characters")
		}
	}
	if !utf8.ValidString(s) {
		return errors.New("must be valid UTF-8")
	}
	return nil
}
