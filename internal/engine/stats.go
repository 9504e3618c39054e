package engine

import (
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
)

// Stats are engine-wide totals since the engine started.
type Stats struct {
	// BytesDown and BytesUp are piece data received from and sent to peers over every
	// connection, including those of removed tasks.
	BytesDown, BytesUp int64
	// Peers is the number of connected peers over all tasks.
	Peers int
	// ReaderWait is the total time [Reader.Read] calls spent waiting for pieces that were
	// not verified yet when the read began.
	ReaderWait time.Duration
}

// readerWait accumulates [Stats.ReaderWait] in nanoseconds.
type readerWait struct{ nanos atomic.Int64 }

func (w *readerWait) add(d time.Duration) { w.nanos.Add(int64(d)) }

// Stats returns the engine's totals.
func (e *Engine) Stats() Stats {
	cs := e.cl.ConnStats()
	st := Stats{
		BytesDown:  cs.BytesReadUsefulData.Int64(),
		BytesUp:    cs.BytesWrittenData.Int64(),
		ReaderWait: time.Duration(e.wait.nanos.Load()),
	}
	e.mu.Lock()
	tasks := make([]*Task, 0, len(e.order))
	tasks = append(tasks, e.order...)
	e.mu.Unlock()
	for _, t := range tasks {
		st.Peers += t.tor.Stats().ActivePeers
	}
	return st
}

// playPos records where the latest stream read of a task happened: the player's
// position, for [Status.BufferedBytes]. Two atomics: a torn pair only skews one
// display figure for one poll.
type playPos struct {
	file atomic.Int64 // file index + 1; 0 = no read yet
	pos  atomic.Int64 // byte offset in that file
}

func (p *playPos) set(file int, pos int64) {
	p.pos.Store(pos)
	p.file.Store(int64(file) + 1)
}

// at returns the position in file index, 0 when no read of that file happened yet.
func (p *playPos) at(index int) int64 {
	if p.file.Load() != int64(index)+1 {
		return 0
	}
	return p.pos.Load()
}

// bufferedAhead returns how many verified bytes of the selected file follow the player's
// position without a gap, and that span in seconds when the file's bitrate is known (0
// otherwise). Called by Status with the info known.
func (t *Task) bufferedAhead(runs torrent.PieceStateRuns, fileIndex int, fileOff, fileLen, pieceLen int64, bitrate int64) (int64, float64) {
	pos := t.played.at(fileIndex)
	if pos >= fileLen || pieceLen <= 0 {
		return 0, 0
	}
	abs := fileOff + pos
	piece := int(abs / pieceLen)
	// Find the first piece at or after piece that is not complete.
	at, end := 0, -1
	for _, r := range runs {
		if at+r.Length <= piece {
			at += r.Length
			continue
		}
		if !r.Complete {
			end = max(at, piece)
			break
		}
		at += r.Length
	}
	if end < 0 {
		end = at // every piece to the end is complete
	}
	ahead := min(int64(end)*pieceLen, fileOff+fileLen) - abs
	if ahead <= 0 {
		return 0, 0
	}
	secs := 0.0
	if bitrate > 0 {
		secs = float64(ahead*8) / float64(bitrate)
	}
	return ahead, secs
}
