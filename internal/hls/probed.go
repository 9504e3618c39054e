package hls

import "sync"

// maxProbed bounds the files whose tracks a Manager remembers.
const maxProbed = 256

// FileTracks is what a probe found in one file of a task: its tracks and the
// mode a session on it uses.
type FileTracks struct {
	// Mode is ModeCopy, ModeCopyVideo or ModeTranscode: a session's
	// without burnt-in subtitles when one has probed the file, else the
	// burn-in session's (transcode).
	Mode string
	// Audio and Subtitles as in [Info]: every audio track, every subtitle
	// track (text ones are renditions; image ones are Image and can only be
	// burnt in) and the sidecars. Burnt is never set here: it belongs to a
	// session ([Info]).
	Audio, Subtitles []TrackInfo
}

type probedKey struct {
	taskID string
	file   int
}

// probedCache remembers the tracks of probed files after their sessions
// close, so `files` can list them; CloseTask forgets a task's.
type probedCache struct {
	mu    sync.Mutex // guards files, order
	files map[probedKey]FileTracks
	order []probedKey // oldest first, for eviction
}

// put records ft for k; unless replace, only when k has no entry yet.
func (c *probedCache) put(k probedKey, ft FileTracks, replace bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil {
		c.files = make(map[probedKey]FileTracks)
	}
	if _, ok := c.files[k]; ok && !replace {
		return
	} else if !ok {
		c.order = append(c.order, k)
	}
	c.files[k] = ft
	for len(c.order) > maxProbed {
		delete(c.files, c.order[0])
		c.order = c.order[1:]
	}
}

func (c *probedCache) get(k probedKey) (FileTracks, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft, ok := c.files[k]
	return ft, ok
}

func (c *probedCache) forgetTask(taskID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.order[:0]
	for _, k := range c.order {
		if k.taskID == taskID {
			delete(c.files, k)
			continue
		}
		kept = append(kept, k)
	}
	c.order = kept
}

// Tracks returns what the last successful probe of file fileIndex of task
// taskID found, from a session open now or closed since; ok is false when no
// session has probed that file (or its task was closed with CloseTask).
func (m *Manager) Tracks(taskID string, fileIndex int) (ft FileTracks, ok bool) {
	return m.probed.get(probedKey{taskID, fileIndex})
}
