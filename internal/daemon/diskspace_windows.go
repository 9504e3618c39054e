package daemon

import "golang.org/x/sys/windows"

// diskSpace returns the free (available to us) and total bytes of the volume
// holding dir; zeros when unknown.
func diskSpace(dir string) (free, total int64) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, 0
	}
	var avail, tot, all uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &tot, &all); err != nil {
		return 0, 0
	}
	return int64(avail), int64(tot)
}
