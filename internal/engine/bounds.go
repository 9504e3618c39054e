package engine

import (
	"fmt"

	"github.com/anacrolix/torrent/metainfo"
)

// Metainfo bounds.
//
// One .torrent with 100,000 files took the daemon from 23 MiB to 526 MiB: the torrent library
// keeps state per file (and the engine a layout entry, a File, a path). A torrent is refused
// when it has more files or more bytes of file names than the configured bounds, before the
// library sees it when the metainfo comes from a file, a URL or the cache; when it comes from
// peers (a magnet) the library has parsed it already, so the task fails, and the library's
// state for it is freed when the task is removed (see memory.go). The defaults admit any real
// season pack.

// Defaults of [Options.MaxFiles] and [Options.MaxNameBytes].
const (
	DefaultMaxFiles     = 10_000
	DefaultMaxNameBytes = 4 << 20
)

// checkBounds refuses info with more than maxFiles files or more than maxNameBytes bytes of
// names (the torrent's name plus every file's path components). It counts without building
// the per-file list. Errors wrap [ErrBadSource].
func checkBounds(info *metainfo.Info, maxFiles int, maxNameBytes int64) error {
	files, names := 0, int64(len(info.Name))
	switch {
	case len(info.Files) > 0:
		files = len(info.Files)
		if files <= maxFiles {
			for _, f := range info.Files {
				for _, p := range f.Path {
					names += int64(len(p)) + 1
				}
				if names > maxNameBytes {
					break
				}
			}
		}
	case info.HasV2() && info.FileTree.IsDir():
		var walk func(t *metainfo.FileTree, depth int)
		walk = func(t *metainfo.FileTree, depth int) {
			if files > maxFiles || names > maxNameBytes || depth > 64 {
				return
			}
			for name, sub := range t.Dir {
				names += int64(len(name)) + 1
				if !sub.IsDir() {
					files++
					continue
				}
				walk(&sub, depth+1)
			}
		}
		walk(&info.FileTree, 0)
	default:
		files = 1
	}
	if files > maxFiles {
		return fmt.Errorf("%w: %d files, more than the limit of %d", ErrBadSource, files, maxFiles)
	}
	if names > maxNameBytes {
		return fmt.Errorf("%w: file names longer than the limit of %d bytes in all", ErrBadSource, maxNameBytes)
	}
	return nil
}

// checkBounds applies the engine's bounds (see bounds.go).
func (e *Engine) checkBounds(info *metainfo.Info) error {
	return checkBounds(info, e.opts.MaxFiles, e.opts.MaxNameBytes)
}
