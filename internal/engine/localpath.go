package engine

import (
	"fmt"
	"path/filepath"
)

// LocalPath returns the absolute path where file index of the task is stored,
// for a player on this host that can only open a local file (VLC's sub-file).
// It says nothing about what the file holds: only bytes read through
// [Task.OpenFile] are known to be verified, so read the whole file first. It
// fails with [ErrNotFound] for an unknown index and with [ErrUnsafePath] when
// the path goes through a symbolic link.
func (t *Task) LocalPath(index int) (string, error) {
	t.mu.Lock()
	var rel string
	ok := index >= 0 && index < len(t.files)
	if ok {
		rel = t.files[index].Path
	}
	t.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("task %s file %d: %w", t.id, index, ErrNotFound)
	}
	if !t.seeded {
		if err := checkNoSymlinks(t.baseDir, rel, map[string]bool{}); err != nil {
			return "", fmt.Errorf("task %s file %d: %w", t.id, index, err)
		}
	}
	full := filepath.Join(t.baseDir, filepath.FromSlash(rel))
	if !filepath.IsAbs(full) {
		return "", fmt.Errorf("task %s file %d: %w: %q is not absolute", t.id, index, ErrUnsafePath, full)
	}
	return full, nil
}
