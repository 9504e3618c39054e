package hls

import (
	"strconv"
	"testing"
)

// TestProbedCache: a burn-in session's probe does not replace a plain one's,
// CloseTask's forgetTask drops only that task, and the cache is bounded.
func TestProbedCache(t *testing.T) {
	var c probedCache
	k := probedKey{"task", 1}
	c.put(k, FileTracks{Mode: ModeTranscode}, false) // a burn-in session first
	c.put(k, FileTracks{Mode: ModeCopy}, true)       // then a plain one
	c.put(k, FileTracks{Mode: ModeTranscode}, false) // another burn-in
	if ft, ok := c.get(k); !ok || ft.Mode != ModeCopy {
		t.Errorf("get(%v) = %+v, %v, want the plain session's copy", k, ft, ok)
	}
	other := probedKey{"other", 1}
	c.put(other, FileTracks{Mode: ModeCopyVideo}, true)
	c.forgetTask("task")
	if _, ok := c.get(k); ok {
		t.Errorf("get(%v) after forgetTask found an entry", k)
	}
	if _, ok := c.get(other); !ok {
		t.Errorf("forgetTask(task) dropped %v", other)
	}
	for i := range maxProbed + 10 {
		c.put(probedKey{"many", i}, FileTracks{Mode: strconv.Itoa(i)}, true)
	}
	if len(c.files) != maxProbed || len(c.order) != maxProbed {
		t.Errorf("cache holds %d files (%d in order), want %d", len(c.files), len(c.order), maxProbed)
	}
	if _, ok := c.get(probedKey{"many", maxProbed + 9}); !ok {
		t.Error("the newest entry was evicted")
	}
	if _, ok := c.get(other); ok {
		t.Error("the oldest entry was kept past the bound")
	}
}
