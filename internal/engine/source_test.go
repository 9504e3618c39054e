package engine_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/torrentclaw/cli/internal/engine"
)

const (
	hexHash   = "52e223d59e8d7d29b4ddde6edaf157416cf04b40"
	b32Hash   = "KLRCHVM6RV6STNG53ZXNV4KXIFWPAS2A" // hexHash in base32
	hexHashV2 = "0f6a3b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
)

var sourceCases = []struct {
	name string
	in   string
	want engine.Source
	bad  bool
}{
	{name: "hex infohash", in: hexHash, want: engine.Source{Kind: engine.SourceInfoHash, InfoHash: hexHash}},
	{name: "uppercase hex infohash", in: strings.ToUpper(hexHash), want: engine.Source{Kind: engine.SourceInfoHash, InfoHash: hexHash}},
	{name: "base32 infohash", in: b32Hash, want: engine.Source{Kind: engine.SourceInfoHash, InfoHash: hexHash}},
	{name: "lowercase base32 infohash", in: strings.ToLower(b32Hash), want: engine.Source{Kind: engine.SourceInfoHash, InfoHash: hexHash}},
	{name: "v2 infohash", in: hexHashV2, want: engine.Source{Kind: engine.SourceInfoHash, InfoHashV2: hexHashV2}},
	{name: "surrounding space", in: "  " + hexHash + "\n", want: engine.Source{Kind: engine.SourceInfoHash, InfoHash: hexHash}},
	{name: "zero infohash", in: strings.Repeat("0", 40), bad: true},
	{name: "39 hex", in: hexHash[:39], bad: true},
	{name: "not hex", in: "zz" + hexHash[2:], bad: true},
	{name: "empty", in: "", bad: true},
	{name: "blank", in: " \t", bad: true},
	{name: "random word", in: "hello", bad: true},
	{
		name: "magnet full",
		in:   "magnet:?xt=urn:btih:" + hexHash + "&dn=My%20Movie&tr=udp%3A%2F%2Ftracker.example%3A80&tr=http%3A%2F%2Ft.example%2Fannounce&x.pe=127.0.0.1%3A6881&x.pe=%5B%3A%3A1%5D%3A6882",
		want: engine.Source{
			Kind: engine.SourceMagnet, InfoHash: hexHash, DisplayName: "My Movie",
			Trackers: []string{"udp://tracker.example:80", "http://t.example/announce"},
			Peers:    []string{"127.0.0.1:6881", "[::1]:6882"},
		},
	},
	{name: "magnet base32", in: "magnet:?xt=urn:btih:" + b32Hash, want: engine.Source{Kind: engine.SourceMagnet, InfoHash: hexHash}},
	{name: "magnet uppercase scheme and urn", in: "MAGNET:?xt=URN:BTIH:" + strings.ToUpper(hexHash), want: engine.Source{Kind: engine.SourceMagnet, InfoHash: hexHash}},
	{name: "magnet v2", in: "magnet:?xt=urn:btmh:1220" + hexHashV2, want: engine.Source{Kind: engine.SourceMagnet, InfoHashV2: hexHashV2}},
	{name: "magnet hybrid", in: "magnet:?xt=urn:btih:" + hexHash + "&xt=urn:btmh:1220" + hexHashV2, want: engine.Source{Kind: engine.SourceMagnet, InfoHash: hexHash, InfoHashV2: hexHashV2}},
	{name: "magnet hostname peer", in: "magnet:?xt=urn:btih:" + hexHash + "&x.pe=seed.example.org:51413", want: engine.Source{Kind: engine.SourceMagnet, InfoHash: hexHash, Peers: []string{"seed.example.org:51413"}}},
	{name: "magnet drops unknown tracker scheme", in: "magnet:?xt=urn:btih:" + hexHash + "&tr=gopher%3A%2F%2Fx", want: engine.Source{Kind: engine.SourceMagnet, InfoHash: hexHash}},
	{name: "magnet ignores other xt", in: "magnet:?xt=urn:sha1:abc&xt=urn:btih:" + hexHash, want: engine.Source{Kind: engine.SourceMagnet, InfoHash: hexHash}},
	{name: "magnet without xt", in: "magnet:?dn=x", bad: true},
	{name: "magnet without query", in: "magnet:" + hexHash, bad: true},
	{name: "magnet short hash", in: "magnet:?xt=urn:btih:abc", bad: true},
	{name: "magnet padded base32", in: "magnet:?xt=urn:btih:" + b32Hash[:30] + "==", bad: true},
	{name: "magnet bad escape", in: "magnet:?xt=urn:btih:" + hexHash + "&dn=%zz", bad: true},
	{name: "magnet bad peer port", in: "magnet:?xt=urn:btih:" + hexHash + "&x.pe=1.2.3.4:0", bad: true},
	{name: "magnet bad peer", in: "magnet:?xt=urn:btih:" + hexHash + "&x.pe=no-port", bad: true},
	{name: "magnet bad peer host", in: "magnet:?xt=urn:btih:" + hexHash + "&x.pe=a%20b:1", bad: true},
	{name: "magnet bad multihash", in: "magnet:?xt=urn:btmh:1114" + hexHashV2, bad: true},
	{name: "magnet v2 uppercase", in: "magnet:?xt=URN:BTMH:1220" + strings.ToUpper(hexHashV2), want: engine.Source{Kind: engine.SourceMagnet, InfoHashV2: hexHashV2}},
	{
		name: "magnet hybrid v2 first with trackers and peers",
		in:   "magnet:?xt=urn:btmh:1220" + hexHashV2 + "&dn=Pack&xt=urn:btih:" + b32Hash + "&tr=udp%3A%2F%2Ft.example%3A6969&x.pe=127.0.0.1%3A6881",
		want: engine.Source{
			Kind: engine.SourceMagnet, InfoHash: hexHash, InfoHashV2: hexHashV2, DisplayName: "Pack",
			Trackers: []string{"udp://t.example:6969"}, Peers: []string{"127.0.0.1:6881"},
		},
	},
	{name: "magnet lowercase base32", in: "magnet:?xt=urn:btih:" + strings.ToLower(b32Hash), want: engine.Source{Kind: engine.SourceMagnet, InfoHash: hexHash}},
	{name: "magnet v2 short digest", in: "magnet:?xt=urn:btmh:1220" + hexHashV2[:62], bad: true},
	{name: "magnet v2 length byte lies", in: "magnet:?xt=urn:btmh:121f" + hexHashV2[:62], bad: true},
	{name: "magnet v2 zero", in: "magnet:?xt=urn:btmh:1220" + strings.Repeat("0", 64), bad: true},
	{name: "magnet v1 zero", in: "magnet:?xt=urn:btih:" + strings.Repeat("0", 40), bad: true},
	{name: "magnet two v1 infohashes", in: "magnet:?xt=urn:btih:" + hexHash + "&xt=urn:btih:" + strings.Repeat("1", 40), bad: true},
	{name: "magnet two v2 infohashes", in: "magnet:?xt=urn:btmh:1220" + hexHashV2 + "&xt=urn:btmh:1220" + strings.Repeat("1", 64), bad: true},
	{name: "magnet v2 not hex", in: "magnet:?xt=urn:btmh:1220" + "zz" + hexHashV2[2:], bad: true},
	{name: "magnet empty btih", in: "magnet:?xt=urn:btih:", bad: true},
	{name: "https url", in: "https://example.org/t/1.torrent?k=v", want: engine.Source{Kind: engine.SourceURL, URL: "https://example.org/t/1.torrent?k=v"}},
	{name: "http url", in: "HTTP://127.0.0.1:8080/x", want: engine.Source{Kind: engine.SourceURL, URL: "HTTP://127.0.0.1:8080/x"}},
	{name: "url without host", in: "http:///x.torrent", bad: true},
	{name: "url bad port", in: "http://h:99999/x", bad: true},
	{name: "torrent path", in: "movies/x.torrent", want: engine.Source{Kind: engine.SourceFile, Path: "movies/x.torrent"}},
	{name: "absolute path", in: "/tmp/dl/file", want: engine.Source{Kind: engine.SourceFile, Path: "/tmp/dl/file"}},
	{name: "file url", in: "file:///tmp/a%20b.torrent", want: engine.Source{Kind: engine.SourceFile, Path: "/tmp/a b.torrent"}},
	{name: "remote file url", in: "file://host/x.torrent", bad: true},
	{name: "path with NUL", in: "a\x00.torrent", bad: true},
}

func TestParseSource(t *testing.T) {
	t.Parallel()
	for _, tc := range sourceCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := engine.ParseSource(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("ParseSource(%q) = %+v, want error", tc.in, got)
				}
				if !errors.Is(err, engine.ErrBadSource) {
					t.Errorf("ParseSource(%q) error %v does not wrap ErrBadSource", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSource(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseSource(%q) = %#v, want %#v", tc.in, got, tc.want)
			}
			again, err := engine.ParseSource(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("ParseSource(%q) = %+v, %v; want round trip to %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestSourceKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  engine.Source
		want string
	}{
		{engine.Source{InfoHash: hexHash, InfoHashV2: hexHashV2}, hexHash},
		{engine.Source{InfoHashV2: hexHashV2}, hexHashV2[:40]},
		{engine.Source{Kind: engine.SourceURL}, ""},
	}
	for _, tc := range tests {
		if got := tc.src.Key(); got != tc.want {
			t.Errorf("%+v.Key() = %q, want %q", tc.src, got, tc.want)
		}
	}
}

func FuzzParseSource(f *testing.F) {
	for _, tc := range sourceCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		src, err := engine.ParseSource(in)
		if err != nil {
			if !errors.Is(err, engine.ErrBadSource) {
				t.Fatalf("ParseSource(%q) error %v does not wrap ErrBadSource", in, err)
			}
			return
		}
		again, err := engine.ParseSource(src.String())
		if err != nil || !reflect.DeepEqual(again, src) {
			t.Fatalf("ParseSource(%q) = %+v; String %q parses to %+v, %v", in, src, src.String(), again, err)
		}
		if src.Kind == engine.SourceMagnet && src.InfoHashV2 != "" {
			// ParseSource parses magnets with the library's v2 parser after normalising case;
			// where the library takes the raw link, both must name the same v2 infohash.
			if m, ok := libraryMagnetV2(in); ok && m.V2InfoHash.Ok && fmt.Sprintf("%x", m.V2InfoHash.Value[:]) != src.InfoHashV2 {
				t.Fatalf("ParseSource(%q) v2 infohash %s, library says %x", in, src.InfoHashV2, m.V2InfoHash.Value[:])
			}
		}
		if src.Kind == engine.SourceMagnet && src.InfoHash != "" {
			// Agree with the torrent library's parser where it accepts the link.
			if m, ok := libraryMagnet(in); ok && m.InfoHash.HexString() != src.InfoHash {
				t.Fatalf("ParseSource(%q) infohash %s, library says %s", in, src.InfoHash, m.InfoHash.HexString())
			}
		}
	})
}

// libraryMagnetV2 parses with the torrent library's v2 parser, which can panic on some inputs.
func libraryMagnetV2(s string) (m metainfo.MagnetV2, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	m, err := metainfo.ParseMagnetV2Uri(strings.TrimSpace(s))
	return m, err == nil
}

// libraryMagnet parses with the torrent library, which can panic on some inputs.
func libraryMagnet(s string) (m metainfo.Magnet, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	m, err := metainfo.ParseMagnetUri(strings.TrimSpace(s))
	return m, err == nil
}
