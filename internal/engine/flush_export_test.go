package engine

// SetSyncFile replaces how the engine syncs a file before it records it, until the returned
// function restores it. Tests only; not safe while an engine runs.
func SetSyncFile(f func(path string) error) (restore func()) {
	prev := syncFile
	syncFile = f
	return func() { syncFile = prev }
}
