package engine_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/torrentclaw/cli/internal/engine"
)

func TestSanitizePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []string
		want    []string
		changed bool
	}{
		{"plain", []string{"a", "b.mkv"}, []string{"a", "b.mkv"}, false},
		{"dot dot", []string{"..", "..", "x"}, []string{"x"}, true},
		{"absolute in one component", []string{"/etc/passwd"}, []string{"etc", "passwd"}, true},
		{"backslashes", []string{`..\..\win.ini`}, []string{"win.ini"}, true},
		{"nul", []string{"a\x00b.mkv"}, []string{"a_b.mkv"}, true},
		{"control", []string{"a\nb\x7f"}, []string{"a_b_"}, true},
		{"dot", []string{".", "x"}, []string{"x"}, true},
		{"empty component", []string{"", "x"}, []string{"x"}, true},
		{"inner dot dot", []string{"sub", "..", "..", "y"}, []string{"sub", "y"}, true},
		{"invalid utf8", []string{"a\xffb"}, []string{"a_b"}, true},
		{"long", []string{strings.Repeat("é", 200)}, []string{strings.Repeat("é", 127)}, true},
		{"hidden file kept", []string{".hidden"}, []string{".hidden"}, false},
		{"only dots", []string{"..", "."}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := engine.SanitizePath(tc.in)
			if !reflect.DeepEqual(got, tc.want) || changed != tc.changed {
				t.Errorf("SanitizePath(%q) = %q, %v; want %q, %v", tc.in, got, changed, tc.want, tc.changed)
			}
		})
	}
}

func TestBuildLayout(t *testing.T) {
	t.Parallel()
	info := &metainfo.Info{
		Name:        "../evil",
		PieceLength: 16 << 10,
		Files: []metainfo.FileInfo{
			{Path: []string{"..", "..", "x.bin"}, Length: 1},
			{Path: []string{"/abs/escape.bin"}, Length: 1},
			{Path: []string{"a\x00b.mkv"}, Length: 1},
			{Path: []string{"dup.bin"}, Length: 1},
			{Path: []string{"x", "..", "dup.bin"}, Length: 1},
			{Path: []string{"DUP.bin"}, Length: 1},
			{Path: []string{"ok", "movie.mp4"}, Length: 1},
			{Path: []string{"ok"}, Length: 1},
			{Path: []string{".."}, Length: 1},
		},
	}
	lay := engine.BuildLayout(info, "fallback")
	want := []string{
		"evil/x.bin",
		"evil/abs/escape.bin",
		"evil/a_b.mkv",
		"evil/dup.bin",
		"evil/x/dup.bin",
		"evil/DUP (2).bin",
		"evil/ok/movie.mp4",
		"evil/ok (2)",
		"evil/file-8",
	}
	if got := engine.LayoutPaths(lay); !reflect.DeepEqual(got, want) {
		t.Errorf("BuildLayout paths = %q, want %q", got, want)
	}
	if got, want := engine.LayoutRenamed(lay), 8; got != want {
		t.Errorf("BuildLayout renamed = %d, want %d", got, want)
	}

	single := engine.BuildLayout(&metainfo.Info{Name: "..", PieceLength: 1, Length: 1}, "abcd")
	if got := engine.LayoutPaths(single); !reflect.DeepEqual(got, []string{"abcd"}) {
		t.Errorf("BuildLayout(single file named ..) = %q, want [abcd]", got)
	}
	noName := engine.BuildLayout(&metainfo.Info{Name: metainfo.NoName, PieceLength: 1, Files: []metainfo.FileInfo{{Path: []string{"a"}, Length: 1}}}, "x")
	if got := engine.LayoutPaths(noName); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("BuildLayout(NoName) = %q, want [a]", got)
	}
}

func FuzzBuildLayout(f *testing.F) {
	f.Add("name", "a/b", "../../x", "a\x00b")
	f.Add("..", "/etc/passwd", "C:\\x", "")
	f.Add("-", "dup", "DUP", "dup/x")
	f.Fuzz(func(t *testing.T, name, p1, p2, p3 string) {
		info := &metainfo.Info{Name: name, PieceLength: 1}
		for _, p := range []string{p1, p2, p3} {
			info.Files = append(info.Files, metainfo.FileInfo{Path: strings.Split(p, "/"), Length: 1})
		}
		lay := engine.BuildLayout(info, "fallback")
		seen := make(map[string]bool)
		for _, p := range engine.LayoutPaths(lay) {
			if !filepath.IsLocal(p) || strings.ContainsAny(p, "\x00\\") || !utf8.ValidString(p) {
				t.Fatalf("BuildLayout gave unsafe path %q", p)
			}
			for _, c := range strings.Split(p, "/") {
				if c == "" || c == "." || c == ".." || len(c) > 255 {
					t.Fatalf("BuildLayout gave bad component %q in %q", c, p)
				}
			}
			if seen[strings.ToLower(p)] {
				t.Fatalf("BuildLayout gave duplicate path %q", p)
			}
			seen[strings.ToLower(p)] = true
		}
	})
}
