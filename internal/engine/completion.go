package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/anacrolix/torrent/storage"
	"go.etcd.io/bbolt"
)

// Piece-database recovery.
//
// The piece-completion database is the torrent library's bbolt file in DataDir. A garbage or
// truncated file used to stop the engine from starting, with a hint about another daemon that
// was wrong. Now the file is checked before the library opens it: a file that another process
// holds locked is the one real conflict (and keeps the hint); a file bbolt cannot open or walk
// is moved aside as <name>.corrupt-<time> and a new, empty database takes its place. Either
// way every piece is then of unknown completion, so the library verifies it from the files on
// disk (nothing verified is downloaded again) before anything is served; the engine logs one
// line and reports it in [Engine.Recoveries] for doctor. An empty database is no error, but it
// also means every piece is hashed again, which is logged and reported too.

// completionFile is the name the torrent library gives its bbolt database in DataDir.
const completionFile = ".torrent.bolt.db"

// completionLockTimeout bounds the wait for another process's lock on the database.
const completionLockTimeout = time.Second

// Recovery describes something the engine repaired when it started.
type Recovery struct {
	// What happened, one line for a person ("piece database corrupt: moved aside ...").
	What string `json:"what"`
	// MovedTo is where a corrupt file was moved, or "".
	MovedTo string `json:"movedTo,omitempty"`
	// Err is the error that showed the damage, or "".
	Err string    `json:"err,omitempty"`
	At  time.Time `json:"at"`
}

// Recoveries returns what the engine repaired at start (piece database, unclean stop), for
// doctor and status. The slice is a copy.
func (e *Engine) Recoveries() []Recovery {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Recovery(nil), e.recoveries...)
}

func (e *Engine) addRecovery(r Recovery) {
	e.mu.Lock()
	e.recoveries = append(e.recoveries, r)
	e.mu.Unlock()
}

// errCompletionLocked reports a piece database held by another process.
var errCompletionLocked = errors.New("piece database is locked by another process (is another daemon using this data dir?)")

// openCompletion opens the piece-completion database in dir, moving a corrupt one aside.
func (e *Engine) openCompletion(dir string) (storage.PieceCompletion, error) {
	p := filepath.Join(dir, completionFile)
	fi, statErr := os.Stat(p)
	switch {
	case statErr != nil:
		// A new data dir (or an unreadable one: the library's open says why).
	case fi.Size() == 0:
		e.log.Warn("piece database is empty: every piece will be verified again from the files", "path", p)
		e.addRecovery(Recovery{What: "piece database was empty: pieces verified again from the files", At: time.Now()})
	default:
		err := probeCompletion(p)
		if errors.Is(err, errCompletionLocked) {
			return nil, fmt.Errorf("open piece database %s: %w", p, err)
		}
		if err != nil {
			moved := fmt.Sprintf("%s.corrupt-%s", p, time.Now().UTC().Format("20060102T150405.000000000Z"))
			if rerr := os.Rename(p, moved); rerr != nil {
				return nil, fmt.Errorf("open piece database %s: corrupt (%w), and it cannot be moved aside: %w", p, err, rerr)
			}
			e.log.Warn("piece database corrupt: moved aside, every piece will be verified again from the files",
				"path", p, "moved_to", moved, "err", err)
			e.addRecovery(Recovery{What: "piece database was corrupt: moved aside, pieces verified again from the files",
				MovedTo: moved, Err: err.Error(), At: time.Now()})
		}
	}
	pc, err := storage.NewBoltPieceCompletion(dir)
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open piece database %s: %w", p, errCompletionLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open piece database %s: %w", p, err)
	}
	return pc, nil
}

// probeCompletion opens the bbolt file at p read-only and reads all of it: every bucket,
// key and value, and checks that the pages it claims lie within the file. It returns
// errCompletionLocked when another process holds the file, another error when the file is
// damaged. A damaged file can make bbolt fault on its memory map rather than return an error;
// such a fault is turned into an error here (the map of a damaged file may then stay mapped
// until the process exits).
func probeCompletion(p string) (err error) {
	errc := make(chan error, 1) // buffered: the probe never waits for its reader
	go func() {
		// A fault in the memory map becomes a panic this goroutine recovers.
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("unreadable database: %v", r)
			}
		}()
		errc <- probeBolt(p)
	}()
	return <-errc
}

func probeBolt(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	db, err := bbolt.Open(p, 0o600, &bbolt.Options{ReadOnly: true, Timeout: completionLockTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return errCompletionLocked
	}
	if err != nil {
		return err
	}
	err = db.View(func(tx *bbolt.Tx) error {
		if size := tx.Size(); size > fi.Size() {
			return fmt.Errorf("truncated: the database claims %d bytes, the file has %d", size, fi.Size())
		}
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { return walkBucket(b, 0) })
	})
	return errors.Join(err, db.Close())
}

// maxBucketDepth bounds the recursion into nested buckets (the library nests two deep).
const maxBucketDepth = 8

// walkBucket reads every key and value of b and its sub-buckets.
func walkBucket(b *bbolt.Bucket, depth int) error {
	if depth > maxBucketDepth {
		return errors.New("buckets nested too deep")
	}
	return b.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil
		}
		sub := b.Bucket(k)
		if sub == nil {
			return fmt.Errorf("key %x is neither a value nor a bucket", k)
		}
		return walkBucket(sub, depth+1)
	})
}
