//go:build unix

package daemon

import "syscall"

// diskSpace returns the free (available to us) and total bytes of the file
// system holding dir; zeros when unknown.
func diskSpace(dir string) (free, total int64) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, 0
	}
	return int64(fs.Bavail) * int64(fs.Bsize), int64(fs.Blocks) * int64(fs.Bsize)
}
