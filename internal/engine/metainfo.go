package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	infohash_v2 "github.com/anacrolix/torrent/types/infohash-v2"

	"github.com/torrentclaw/cli/internal/atomicfile"
)

// Limits on metainfo we accept.
const (
	maxMetainfoBytes = 16 << 20
	// maxFetchBytes caps a .torrent fetched over http(s) (DESIGN.md: 10 MiB).
	maxFetchBytes = 10 << 20
	// maxRedirects caps the redirects of one fetch, each to http or https.
	maxRedirects   = 5
	maxPieceLength = 256 << 20
	maxFiles       = 100_000
	maxFileLength  = 1 << 50
)

// videoExts are the extensions of files we consider playable, lowercase with the dot.
var videoExts = []string{
	".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".ts", ".m2ts",
	".mpg", ".mpeg", ".wmv", ".flv", ".ogv", ".3gp",
}

// playable reports whether name has a video extension.
func playable(name string) bool {
	return slices.Contains(videoExts, strings.ToLower(path.Ext(name)))
}

// torrentMeta is a decoded, validated metainfo.
type torrentMeta struct {
	mi   *metainfo.MetaInfo
	info *metainfo.Info
	// key is the 40-hex key the torrent is filed under (v1 infohash, else truncated v2).
	key string
	v2  *infohash_v2.T
}

// decodeMetainfo parses and validates a .torrent file's bytes. Errors wrap [ErrBadTorrent].
func decodeMetainfo(b []byte) (m *torrentMeta, err error) {
	// The bencode decoder is meant to return errors for bad input; never let a bug in it
	// take the daemon down.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: metainfo: decoder panic: %v", ErrBadTorrent, r)
		}
	}()
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: metainfo: %v", ErrBadTorrent, err)
	}
	return metaFromInfoBytes(mi)
}

func metaFromInfoBytes(mi *metainfo.MetaInfo) (*torrentMeta, error) {
	if len(mi.InfoBytes) == 0 {
		return nil, fmt.Errorf("%w: metainfo has no info dictionary", ErrBadTorrent)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, fmt.Errorf("%w: info dictionary: %v", ErrBadTorrent, err)
	}
	if err := checkInfo(&info); err != nil {
		return nil, err
	}
	m := &torrentMeta{mi: mi, info: &info}
	if info.HasV1() {
		m.key = mi.HashInfoBytes().HexString()
	}
	if info.HasV2() {
		v2 := infohash_v2.HashBytes(mi.InfoBytes)
		m.v2 = &v2
		if m.key == "" {
			m.key = v2.ToShort().HexString()
		}
	}
	return m, nil
}

// checkInfo rejects info dictionaries the engine cannot store safely or that the torrent
// library would choke on. Errors wrap [ErrBadTorrent].
func checkInfo(info *metainfo.Info) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: info dictionary: %v", ErrBadTorrent, r)
		}
	}()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: info dictionary: "+format, append([]any{ErrBadTorrent}, args...)...)
	}
	if info.PieceLength <= 0 || info.PieceLength > maxPieceLength {
		return bad("piece length %d out of range", info.PieceLength)
	}
	if len(info.Files) > maxFiles {
		return bad("%d files, more than %d", len(info.Files), maxFiles)
	}
	if !info.HasV2() {
		// Check the raw v1 lengths before UpvertedFiles sums them.
		for _, f := range info.Files {
			if f.Length < 0 || f.Length > maxFileLength {
				return bad("file length %d out of range", f.Length)
			}
		}
		if info.Length < 0 || info.Length > maxFileLength {
			return bad("length %d out of range", info.Length)
		}
	}
	files := info.UpvertedFiles()
	if len(files) == 0 || len(files) > maxFiles {
		return bad("%d files", len(files))
	}
	var total int64
	for _, f := range files {
		if f.Length < 0 || f.Length > maxFileLength {
			return bad("file length %d out of range", f.Length)
		}
		total += f.Length
		if total > maxFileLength {
			return bad("total length out of range")
		}
	}
	if total == 0 {
		return bad("torrent has no data")
	}
	if info.HasV1() {
		if len(info.Pieces)%20 != 0 {
			return bad("pieces field has a bad length")
		}
		if !info.HasV2() && (total+info.PieceLength-1)/info.PieceLength != int64(info.NumPieces()) {
			return bad("piece count does not match the file lengths")
		}
	}
	if info.NumPieces() <= 0 {
		return bad("no pieces")
	}
	return nil
}

// loadMetainfoFile reads and validates a .torrent file.
func loadMetainfoFile(name string) (*torrentMeta, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open torrent file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetainfoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read torrent file: %w", err)
	}
	if len(b) > maxMetainfoBytes {
		return nil, fmt.Errorf("%w: torrent file larger than %d bytes", ErrBadSource, maxMetainfoBytes)
	}
	return decodeMetainfo(b)
}

// errMagnetRedirect carries a magnet link an http(s) .torrent URL redirected to.
type errMagnetRedirect struct{ magnet string }

func (e *errMagnetRedirect) Error() string { return "redirect to magnet link" }

// newFetchClient returns the HTTP client for .torrent URLs: no keep-alives (one-shot
// fetches leave no idle connections behind), at most 5 redirects, and only to http(s) —
// a redirect to a magnet link is reported as *errMagnetRedirect.
func newFetchClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			switch strings.ToLower(req.URL.Scheme) {
			case "magnet":
				return &errMagnetRedirect{magnet: req.URL.String()}
			case "http", "https":
			default:
				return fmt.Errorf("redirect to unsupported scheme %q", req.URL.Scheme)
			}
			if len(via) > maxRedirects {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// fetchMetainfo downloads a .torrent over http(s). It returns a magnet Source instead when
// the server redirects to a magnet link. The caller bounds ctx. Every failure to get the
// bytes wraps [ErrFetch] and bytes that are not a torrent wrap [ErrBadTorrent]; the detail
// (status, address, cause) is kept in the error for the local log only.
func fetchMetainfo(ctx context.Context, client *http.Client, rawURL string) (*torrentMeta, *Source, error) {
	if !isHTTPURL(rawURL) {
		return nil, nil, fmt.Errorf("%w: not an http(s) url", ErrBadSource)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: url: %v", ErrBadSource, err)
	}
	req.Header.Set("Accept", "application/x-bittorrent, */*;q=0.5")
	resp, err := client.Do(req)
	if err != nil {
		var mr *errMagnetRedirect
		if errors.As(err, &mr) {
			src, perr := ParseSource(mr.magnet)
			if perr != nil || src.Kind != SourceMagnet {
				return nil, nil, fmt.Errorf("%w: redirected to a bad magnet link", ErrFetch)
			}
			return nil, &src, nil
		}
		// url.Error quotes the URL, which may carry a token; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%w: http status %d", ErrFetch, resp.StatusCode)
	}
	if resp.ContentLength > maxFetchBytes {
		return nil, nil, fmt.Errorf("%w: torrent larger than %d bytes", ErrFetch, maxFetchBytes)
	}
	// One byte over the cap tells a body that is too large from one that fits exactly.
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	if len(b) > maxFetchBytes {
		return nil, nil, fmt.Errorf("%w: torrent larger than %d bytes", ErrFetch, maxFetchBytes)
	}
	m, err := decodeMetainfo(b)
	return m, nil, err
}

// isHTTPURL reports whether s is an absolute http or https URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	return scheme == "http" || scheme == "https"
}

// metaCache stores metainfo in DataDir/torrents/<key>.torrent so a restarted engine needs no
// peers to learn a torrent's info.
type metaCache struct{ dir string }

func (c metaCache) path(key string) string { return filepath.Join(c.dir, key+".torrent") }

// load returns the cached metainfo for key, or nil when there is none or it is unusable.
func (c metaCache) load(key string) *torrentMeta {
	b, err := os.ReadFile(c.path(key))
	if err != nil || len(b) > maxMetainfoBytes {
		return nil
	}
	m, err := decodeMetainfo(b)
	if err != nil || m.key != key {
		return nil
	}
	return m
}

// has reports whether metainfo for key is cached.
func (c metaCache) has(key string) bool {
	_, err := os.Stat(c.path(key))
	return err == nil
}

// store writes mi atomically (temporary file, then rename).
func (c metaCache) store(key string, mi *metainfo.MetaInfo) error {
	b, err := bencode.Marshal(mi)
	if err != nil {
		return fmt.Errorf("encode metainfo: %w", err)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("metainfo cache: %w", err)
	}
	if err := atomicfile.Write(c.path(key), b, 0o600); err != nil {
		return fmt.Errorf("metainfo cache: %w", err)
	}
	return nil
}

func (c metaCache) remove(key string) error {
	err := os.Remove(c.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// infohashV2 is a BitTorrent v2 infohash.
type infohashV2 = infohash_v2.T
