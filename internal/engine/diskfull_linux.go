package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// allocate makes the filesystem back bytes [off, off+n) of the file at path (creating it,
// with the file storage's permissions), so that writes through a memory map cannot fault. It
// returns an error wrapping ENOSPC when the disk is full, and one wrapping
// [errors.ErrUnsupported] when the filesystem cannot allocate.
func allocate(path string, off, n int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		}
	}
	if err != nil {
		return fmt.Errorf("allocate: %w", err)
	}
	for {
		err = syscall.Fallocate(int(f.Fd()), 0, off, n)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.ENOSYS):
		err = fmt.Errorf("allocate %s: %w", path, errors.ErrUnsupported)
	case err != nil:
		err = fmt.Errorf("allocate %s: %w", path, err)
	}
	return errors.Join(err, f.Close())
}

// freeBytes returns the bytes an unprivileged user may still write on the filesystem of dir.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
