package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/anacrolix/torrent/metainfo"
)

// maxComponentBytes is the longest file name component we write; most filesystems allow 255.
const maxComponentBytes = 255

// layout is where a torrent's files live relative to the storage directory.
type layout struct {
	// paths are slash-separated, sanitised, relative paths, one per file of
	// metainfo.Info.UpvertedFiles, in that order.
	paths []string
	// renamed counts the file names (and the torrent name) that had to change.
	renamed int
	// byKey maps a file's identity in the metainfo to its index.
	byKey map[fileKey]int
}

type fileKey struct {
	path           string
	offset, length int64
}

func keyOf(fi *metainfo.FileInfo) fileKey {
	return fileKey{strings.Join(fi.BestPath(), "\x00"), fi.TorrentOffset, fi.Length}
}

// buildLayout sanitises the names in info so that every path is local to the storage
// directory: no absolute paths, no "." or ".." components, no NUL or control characters,
// no invalid UTF-8, no component longer than 255 bytes, and no two files (or a file and a
// directory) sharing a path, case-insensitively. fallback names the torrent when its own
// name is unusable.
func buildLayout(info *metainfo.Info, fallback string) *layout {
	files := info.UpvertedFiles()
	lay := &layout{paths: make([]string, len(files)), byKey: make(map[fileKey]int, len(files))}
	rawName := info.BestName()
	nameComps, changed := sanitizePath([]string{rawName})
	name := cutUTF8(strings.Join(nameComps, "_"), maxComponentBytes)
	if name == "" {
		name, changed = fallback, true
	}
	if changed {
		lay.renamed++
	}
	multi := info.IsDir()
	taken := make(map[string]bool, len(files)) // lowercased file paths
	dirs := make(map[string]bool)              // lowercased directory prefixes
	for i := range files {
		fi := &files[i]
		if _, ok := lay.byKey[keyOf(fi)]; !ok {
			lay.byKey[keyOf(fi)] = i
		}
		var comps []string
		renamed := false
		if multi {
			comps, renamed = sanitizePath(fi.BestPath())
			if len(comps) == 0 {
				comps, renamed = []string{"file-" + strconv.Itoa(i)}, true
			}
			if rawName != metainfo.NoName {
				comps = append([]string{name}, comps...)
			}
		} else {
			comps = []string{name}
		}
		if unique(comps, taken, dirs) {
			renamed = true
		}
		if renamed {
			lay.renamed++
		}
		p := path.Join(comps...)
		taken[strings.ToLower(p)] = true
		for j := 1; j < len(comps); j++ {
			dirs[strings.ToLower(path.Join(comps[:j]...))] = true
		}
		lay.paths[i] = p
	}
	return lay
}

// unique renames comps in place until it names neither an existing file or directory, nor
// goes through an existing file. It reports whether it renamed anything.
func unique(comps []string, taken, dirs map[string]bool) bool {
	renamed := false
	for attempt := 2; ; attempt++ {
		conflict := -1
		for j := 1; j < len(comps); j++ {
			if taken[strings.ToLower(path.Join(comps[:j]...))] {
				conflict = j - 1
				break
			}
		}
		full := strings.ToLower(path.Join(comps...))
		if conflict < 0 && (taken[full] || dirs[full]) {
			conflict = len(comps) - 1
		}
		if conflict < 0 {
			return renamed
		}
		comps[conflict] = withSuffix(stripSuffix(comps[conflict]), attempt, conflict == len(comps)-1)
		renamed = true
	}
}

// withSuffix turns "movie.mkv" into "movie (2).mkv" (file) or "dir" into "dir (2)".
func withSuffix(name string, n int, isFile bool) string {
	ext := ""
	if isFile {
		ext = path.Ext(name)
		if len(ext) > 16 || ext == name {
			ext = ""
		}
	}
	base := strings.TrimSuffix(name, ext)
	suffix := " (" + strconv.Itoa(n) + ")"
	if len(base)+len(suffix)+len(ext) > maxComponentBytes {
		base = cutUTF8(base, maxComponentBytes-len(suffix)-len(ext))
	}
	return base + suffix + ext
}

// stripSuffix undoes a previous withSuffix so repeated attempts do not pile up suffixes.
func stripSuffix(name string) string {
	ext := path.Ext(name)
	if len(ext) > 16 {
		ext = ""
	}
	base := strings.TrimSuffix(name, ext)
	if i := strings.LastIndex(base, " ("); i >= 0 && strings.HasSuffix(base, ")") {
		if _, err := strconv.Atoi(base[i+2 : len(base)-1]); err == nil {
			return base[:i] + ext
		}
	}
	return name
}

// sanitizePath splits the components on both separators and sanitises each, dropping empty,
// "." and ".." components.
func sanitizePath(raw []string) (comps []string, changed bool) {
	for _, c := range raw {
		parts := strings.FieldsFunc(c, func(r rune) bool { return r == '/' || r == '\\' })
		if len(parts) != 1 || parts[0] != c {
			changed = true
		}
		for _, p := range parts {
			s, ch := sanitizeComponent(p)
			if ch {
				changed = true
			}
			if s != "" {
				comps = append(comps, s)
			}
		}
	}
	return comps, changed
}

// sanitizeComponent makes one file name component safe. It returns "" for components that
// must be dropped ("", ".", ".."). Separators, NUL and other control characters become '_'.
func sanitizeComponent(s string) (string, bool) {
	orig := s
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "_")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, s)
	if s == "." || s == ".." {
		s = ""
	}
	s = cutUTF8(s, maxComponentBytes)
	return s, s != orig
}

// cutUTF8 shortens s to at most n bytes on a rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// layoutCache computes a torrent's layout once, when the storage first asks for a path. The
// storage may be opened before the task sees the info (magnet links), so both share this.
type layoutCache struct {
	fallback string
	mu       sync.Mutex
	lay      *layout // guarded by mu
}

func (c *layoutCache) get(info *metainfo.Info) *layout {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lay == nil {
		c.lay = buildLayout(info, c.fallback)
	}
	return c.lay
}

// pathFor is a storage.FilePathMaker: it returns the OS path of a file relative to the
// storage directory.
func (c *layoutCache) pathFor(info *metainfo.Info, fi *metainfo.FileInfo) string {
	lay := c.get(info)
	i, ok := lay.byKey[keyOf(fi)]
	if !ok {
		// Not reachable with the infos the storage is given; stay inside the directory anyway.
		return filepath.Join(".unknown", strconv.FormatInt(fi.TorrentOffset, 10))
	}
	return filepath.FromSlash(lay.paths[i])
}

// checkNoSymlinks returns an error wrapping [ErrUnsafePath] when writing rel under root would
// go through a symbolic link (which could point outside root). checked caches directories
// already found safe.
func checkNoSymlinks(root, rel string, checked map[string]bool) error {
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return fmt.Errorf("%w: %q is not a local path", ErrUnsafePath, rel)
	}
	comps := strings.Split(rel, "/")
	cur := root
	for i, c := range comps {
		cur = filepath.Join(cur, c)
		last := i == len(comps)-1
		if !last && checked[cur] {
			continue
		}
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("check %s: %w", cur, err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s is a symbolic link", ErrUnsafePath, cur)
		}
		if !last {
			if !fi.IsDir() {
				return fmt.Errorf("%w: %s is not a directory", ErrUnsafePath, cur)
			}
			checked[cur] = true
		}
	}
	return nil
}
