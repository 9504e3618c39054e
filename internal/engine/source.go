package engine

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/torrentclaw/cli/internal/ids"
)

// SourceKind tells what a [Source] is.
type SourceKind int

// The kinds of sources [ParseSource] recognises.
const (
	SourceMagnet SourceKind = iota + 1
	SourceInfoHash
	SourceFile
	SourceURL
)

// String returns the kind's name.
func (k SourceKind) String() string {
	switch k {
	case SourceMagnet:
		return "magnet"
	case SourceInfoHash:
		return "infohash"
	case SourceFile:
		return "file"
	case SourceURL:
		return "url"
	}
	return "unknown"
}

// Source is a classified and validated task source, as returned by [ParseSource].
type Source struct {
	Kind SourceKind
	// InfoHash is the BitTorrent v1 infohash, lowercase hex (40 characters), when the source
	// names one (magnet xt=urn:btih, bare v1 infohash).
	InfoHash string
	// InfoHashV2 is the BitTorrent v2 infohash, lowercase hex (64 characters), when the source
	// names one (magnet xt=urn:btmh, bare 64-hex infohash).
	InfoHashV2 string
	// DisplayName is the magnet's dn.
	DisplayName string
	// Trackers are the magnet's tr values with a known scheme (http, https, udp, ws, wss).
	Trackers []string
	// Peers are the magnet's x.pe values (BEP 9): host:port.
	Peers []string
	// Path is the .torrent file path of a [SourceFile].
	Path string
	// URL is the http(s) URL of a [SourceURL].
	URL string
}

// Key returns the 40-hex key the engine files the torrent under: the v1 infohash, else the
// v2 infohash truncated to 20 bytes (as BitTorrent does on the wire). It is "" for files and
// URLs.
func (s Source) Key() string {
	if s.InfoHash != "" {
		return s.InfoHash
	}
	if s.InfoHashV2 != "" {
		return s.InfoHashV2[:40]
	}
	return ""
}

// String returns the canonical text of the source; [ParseSource] of it returns an equal
// Source.
func (s Source) String() string {
	switch s.Kind {
	case SourceMagnet:
		var b strings.Builder
		b.WriteString("magnet:?")
		sep := ""
		add := func(k, v string) {
			b.WriteString(sep)
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(v)
			sep = "&"
		}
		if s.InfoHash != "" {
			add("xt", "urn:btih:"+s.InfoHash)
		}
		if s.InfoHashV2 != "" {
			add("xt", "urn:btmh:1220"+s.InfoHashV2)
		}
		if s.DisplayName != "" {
			add("dn", url.QueryEscape(s.DisplayName))
		}
		for _, tr := range s.Trackers {
			add("tr", url.QueryEscape(tr))
		}
		for _, pe := range s.Peers {
			add("x.pe", url.QueryEscape(pe))
		}
		return b.String()
	case SourceInfoHash:
		if s.InfoHashV2 != "" {
			return s.InfoHashV2
		}
		return s.InfoHash
	case SourceFile:
		return s.Path
	case SourceURL:
		return s.URL
	}
	return ""
}

// Limits on what a source may hold; anything larger is refused rather than truncated.
const (
	maxSourceLen    = 64 << 10
	maxMagnetValues = 200
)

// ParseSource classifies and validates s: a magnet link (xt=urn:btih or urn:btmh, with
// optional dn, tr and x.pe), a bare infohash (40 hex or 32 base32 characters for v1, 64 hex
// for v2), an http(s) URL of a .torrent file, or a .torrent file path (ending in .torrent,
// containing a path separator, or a file:// URL). It does no I/O. Errors wrap [ErrBadSource].
func ParseSource(s string) (Source, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Source{}, badSource("empty source")
	case len(s) > maxSourceLen:
		return Source{}, badSource("source longer than %d bytes", maxSourceLen)
	case hasPrefixFold(s, "magnet:"):
		return parseMagnet(s)
	case hasPrefixFold(s, "http://"), hasPrefixFold(s, "https://"):
		return parseTorrentURL(s)
	case hasPrefixFold(s, "file://"):
		return parseFileURL(s)
	}
	if h, ok := ids.ParseInfoHashV1(s); ok {
		return Source{Kind: SourceInfoHash, InfoHash: h}, nil
	}
	if h, ok := ids.ParseInfoHashV2(s); ok {
		return Source{Kind: SourceInfoHash, InfoHashV2: h}, nil
	}
	if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		return Source{}, badSource("path contains NUL or invalid UTF-8")
	}
	if hasSuffixFold(s, ".torrent") || strings.ContainsAny(s, `/\`) {
		return Source{Kind: SourceFile, Path: s}, nil
	}
	return Source{}, badSource("unrecognised source %q: want a magnet link, an infohash, a .torrent path or an http(s) URL", truncate(s, 64))
}

// ParseOriginSource is [ParseSource] for a source sent by a remote party (the web origin):
// only a magnet link, an infohash or an http(s) URL. A .torrent path or a file:// URL is
// refused with [ErrBadSource] and a fixed message, before anything is opened, so the answer
// is the same whether the file exists, is missing or is a FIFO. The local CLI may still
// name .torrent files through [ParseSource].
func ParseOriginSource(s string) (Source, error) {
	src, err := ParseSource(s)
	if err == nil && src.Kind != SourceFile {
		return src, nil
	}
	// Whatever ParseSource said, say only this: its message may quote the value.
	return Source{}, badSource("want a magnet link, an infohash or an http(s) url")
}

// parseMagnet parses a magnet link with the torrent library's [metainfo.ParseMagnetV2Uri]
// (xt=urn:btih in hex or base32, xt=urn:btmh sha2-256 multihashes, dn, tr, the other
// parameters) and adds what it leaves out: a clear error for a malformed query (the library
// drops bad pairs silently), case-insensitive URN names and base32, nonzero infohashes,
// bounds on trackers and peers, tracker schemes we can use, and checked x.pe addresses.
func parseMagnet(s string) (Source, error) {
	rest := s[len("magnet:"):]
	if !strings.HasPrefix(rest, "?") {
		return Source{}, badSource("magnet link: missing '?' after magnet:")
	}
	q, err := url.ParseQuery(rest[1:])
	if err != nil {
		return Source{}, badSource("magnet link: %v", err)
	}
	if len(q["tr"]) > maxMagnetValues || len(q["x.pe"]) > maxMagnetValues || len(q["xt"]) > maxMagnetValues {
		return Source{}, badSource("magnet link: more than %d trackers, peers or exact topics", maxMagnetValues)
	}
	// The library matches "urn:btih:" and "urn:btmh:" exactly and decodes only uppercase
	// base32; URN names are case-insensitive (RFC 8141) and so are hex and base32 digits.
	for i, xt := range q["xt"] {
		switch {
		case hasPrefixFold(xt, "urn:btih:"):
			q["xt"][i] = "urn:btih:" + strings.ToUpper(xt[len("urn:btih:"):])
		case hasPrefixFold(xt, "urn:btmh:"):
			q["xt"][i] = "urn:btmh:" + xt[len("urn:btmh:"):]
		}
	}
	m, err := libraryMagnet("magnet:?" + q.Encode())
	if err != nil {
		return Source{}, badSource("magnet link: %v", err)
	}
	src := Source{Kind: SourceMagnet}
	if m.InfoHash.Ok {
		h, ok := ids.ParseInfoHashV1(m.InfoHash.Value.HexString())
		if !ok {
			return Source{}, badSource("magnet link: xt=urn:btih: infohash is zero")
		}
		src.InfoHash = h
	}
	if m.V2InfoHash.Ok {
		h, ok := ids.ParseInfoHashV2(hex.EncodeToString(m.V2InfoHash.Value[:]))
		if !ok {
			return Source{}, badSource("magnet link: xt=urn:btmh: infohash is zero")
		}
		src.InfoHashV2 = h
	}
	if src.InfoHash == "" && src.InfoHashV2 == "" {
		return Source{}, badSource("magnet link: no xt=urn:btih: or xt=urn:btmh: infohash")
	}
	if !utf8.ValidString(m.DisplayName) {
		return Source{}, badSource("magnet link: dn is not valid UTF-8")
	}
	src.DisplayName = m.DisplayName
	for _, tr := range m.Trackers {
		if validTracker(tr) {
			src.Trackers = append(src.Trackers, tr)
		}
	}
	for _, pe := range m.Params["x.pe"] {
		if err := validPeer(pe); err != nil {
			return Source{}, badSource("magnet link: x.pe %q: %v", truncate(pe, 80), err)
		}
		src.Peers = append(src.Peers, pe)
	}
	return src, nil
}

// libraryMagnet is [metainfo.ParseMagnetV2Uri] with its errors made readable. v1.59.1 panics
// on a 32-character base32 infohash with padding (it decodes to fewer than 20 bytes); that
// is a malformed link like any other.
func libraryMagnet(s string) (m metainfo.MagnetV2, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("xt=urn:btih: infohash must be 40 hex or 32 base32 characters")
		}
	}()
	m, err = metainfo.ParseMagnetV2Uri(s)
	if err != nil {
		// The library quotes the value and wraps decoder errors; keep its words, bounded.
		return m, errors.New(truncate(err.Error(), 160))
	}
	return m, nil
}

func parseTorrentURL(s string) (Source, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Source{}, badSource("url: %v", err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return Source{}, badSource("url %q has no host", truncate(s, 80))
	}
	if u.Port() != "" {
		if _, err := strconv.ParseUint(u.Port(), 10, 16); err != nil {
			return Source{}, badSource("url %q: bad port", truncate(s, 80))
		}
	}
	if strings.ContainsAny(s, "\x00\r\n") {
		return Source{}, badSource("url contains control characters")
	}
	return Source{Kind: SourceURL, URL: s}, nil
}

func parseFileURL(s string) (Source, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Source{}, badSource("file url: %v", err)
	}
	if u.Host != "" && u.Host != "localhost" {
		return Source{}, badSource("file url %q: only local files are supported", truncate(s, 80))
	}
	if u.Path == "" || !strings.HasPrefix(u.Path, "/") || strings.ContainsRune(u.Path, 0) || !utf8.ValidString(u.Path) {
		return Source{}, badSource("file url %q: want an absolute path", truncate(s, 80))
	}
	return Source{Kind: SourceFile, Path: u.Path}, nil
}

func validTracker(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" || strings.ContainsAny(s, "\x00\r\n") {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "udp", "ws", "wss":
		return true
	}
	return false
}

// validPeer checks a BEP 9 x.pe value: hostname:port, ipv4:port or [ipv6]:port.
func validPeer(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("bad port %q", port)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if host == "" || len(host) > 253 {
		return fmt.Errorf("bad host %q", host)
	}
	for _, c := range host {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '.' {
			return fmt.Errorf("bad host %q", host)
		}
	}
	return nil
}

func badSource(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadSource}, args...)...)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// truncate shortens s for error messages, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
