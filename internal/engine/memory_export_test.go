package engine

import "weak"

// WeakTorrent returns a weak pointer to the task's library torrent, to see whether anything
// still holds it once the task is removed.
func WeakTorrent(t *Task) func() bool {
	w := weak.Make(t.tor)
	return func() bool { return w.Value() != nil }
}

// ContainerDuration is containerDuration, for duration_test.go.
var ContainerDuration = containerDuration
