package engine

import (
	"testing"

	"github.com/anacrolix/torrent"
)

// TestLedgerUrgentFirst: in urgent mode only Now claims are applied, those of the readers
// urgent mode waits for as Now and the others' as Next, so the library asks for a seek's
// pieces before the piece another reader happens to sit on.
func TestLedgerUrgentFirst(t *testing.T) {
	got := map[int]torrent.PiecePriority{}
	l := newLedger(func(p int, prio torrent.PiecePriority) { got[p] = prio })
	seq, seek := new(int), new(int) // two owners
	l.claim(seq, claims{1: prioNow, 2: prioNext, 3: prioHigh})
	l.claim(seek, claims{5: prioNow, 6: prioNext})
	check := func(when string, want map[int]torrent.PiecePriority) {
		t.Helper()
		for p, w := range want {
			if got[p] != w {
				t.Errorf("%s: piece %d at %v, want %v", when, p, got[p], w)
			}
		}
	}
	check("normal", map[int]torrent.PiecePriority{1: prioNow, 2: prioNext, 3: prioHigh, 5: prioNow, 6: prioNext})
	l.setUrgent(true)
	check("urgent, nobody first", map[int]torrent.PiecePriority{1: prioNext, 2: prioNone, 3: prioNone, 5: prioNext, 6: prioNone})
	l.setFirst(seek, true)
	check("urgent, the seek first", map[int]torrent.PiecePriority{1: prioNext, 5: prioNow, 6: prioNone})
	l.setFirst(seek, false)
	check("urgent, the seek no longer first", map[int]torrent.PiecePriority{1: prioNext, 5: prioNext})
	l.setFirst(seek, true)
	l.claim(seek, nil) // the reader closed
	if l.first[seek] {
		t.Error("a closed reader's claims still come first")
	}
	check("urgent, the seek closed", map[int]torrent.PiecePriority{1: prioNext, 5: prioNone})
	l.setUrgent(false)
	check("normal again", map[int]torrent.PiecePriority{1: prioNow, 2: prioNext, 3: prioHigh})
}
