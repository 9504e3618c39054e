package engine

import (
	"io"
	"reflect"
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/anacrolix/torrent"
)

// Memory after a task is removed.
//
// The torrent library (v1.59.1) runs actions deferred under its client lock when the lock is
// released, then truncates the slice that held them with s[:0]. The backing array keeps every
// closure beyond the new length until a later release defers as many actions again; those
// closures (a piece's state publication, a torrent's completion check) reference their
// torrent, so a dropped torrent — its pieces, its files, its storage and through the storage
// our task — stays reachable. Adding a torrent defers one action per piece, so the array is at
// least as long as the largest torrent's piece count, and a 10,000-file torrent held about
// 16 MiB of heap after removal; a 100,000-file one hundreds of MiB.
//
// The library has no API to release them. releaseDeferred clears the stale tail of that slice
// while it holds the client's read lock: writers of the slice hold the write lock, so under the
// read lock nothing appends to it or runs it, and nothing reads the tail. It finds the field by
// name and type; if a library upgrade moves it, releaseDeferred does nothing and reports
// false, and TestRemovedTaskMemoryReturns fails, so the upgrade has to look again.

// deferredActionsField is the path, in torrent.Client, of the slice of deferred actions.
var deferredActionsField = [...]string{"_mu", "unlockActions"}

// releaseDeferred drops the references the client keeps in the unused capacity of its
// deferred-actions slice, and asks the next maintenance tick to return freed memory to the
// operating system (see freeOSMemory). It reports whether it found the slice.
func (e *Engine) releaseDeferred() bool {
	w := &tailClearer{cl: e.cl}
	// WriteStatus holds the read lock while it writes to w.
	e.cl.WriteStatus(w)
	e.freeOS.Store(true)
	return w.found
}

// freeOSMemory returns freed memory to the operating system once after a removal. It runs on
// the maintenance tick rather than in Remove, when the caller of Remove has most likely let
// go of the task too, so the collection it forces frees the torrent; the runtime would
// otherwise return those pages only gradually (a removed 100,000-file torrent is some
// hundreds of MiB).
func (e *Engine) freeOSMemory() {
	if e.freeOS.Swap(false) {
		debug.FreeOSMemory()
	}
}

// tailClearer is the writer given to Client.WriteStatus: its first Write runs with the
// client's read lock held and clears the deferred-actions tail.
type tailClearer struct {
	cl    *torrent.Client
	once  sync.Once
	found bool
}

func (w *tailClearer) Write(b []byte) (int, error) {
	w.once.Do(func() { w.found = clearDeferredTail(w.cl) })
	return len(b), nil
}

var _ io.Writer = (*tailClearer)(nil)

// clearDeferredTail zeroes cl's deferred actions between the slice's length and its capacity.
// The caller holds the client's lock (read or write).
func clearDeferredTail(cl *torrent.Client) bool {
	v := reflect.ValueOf(cl).Elem()
	for _, name := range deferredActionsField {
		if v.Kind() != reflect.Struct {
			return false
		}
		v = v.FieldByName(name)
		if !v.IsValid() {
			return false
		}
	}
	if v.Type() != reflect.TypeFor[[]func()]() {
		return false
	}
	actions := *(*[]func())(unsafe.Pointer(v.UnsafeAddr()))
	clear(actions[len(actions):cap(actions)])
	return true
}
