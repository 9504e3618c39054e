package origin

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// maxStatusBatch caps the updates in one status call.
const maxStatusBatch = 100

// maxPendingTasks bounds the tasks with a queued update. Task IDs may come
// from the origin (rejected entries are reported back), so the queue must
// not grow with what it sends while it is unreachable; an update for a new
// task is dropped when the queue is full (a live task reports again on its
// next change).
const maxPendingTasks = 4096

// Report queues a progress update for the next status batch. It never
// blocks. Only the latest update per task is kept, so a daemon that reports
// often while the origin is down sends one fresh update per task when it
// comes back. Updates without a TaskID are dropped, and so are updates for
// a new task while maxPendingTasks tasks are queued.
func (l *Loop) Report(u StatusUpdate) {
	if u.TaskID == "" {
		return
	}
	l.mu.Lock()
	if _, ok := l.pending[u.TaskID]; !ok {
		if len(l.pending) >= maxPendingTasks {
			l.mu.Unlock()
			l.log.Warn("origin status queue full; update dropped", "max", maxPendingTasks)
			return
		}
		l.order = append(l.order, u.TaskID)
	}
	l.pending[u.TaskID] = u
	l.mu.Unlock()
	signal(l.statusCh)
}

// takeBatch removes and returns up to maxStatusBatch pending updates, oldest
// task first.
func (l *Loop) takeBatch() []StatusUpdate {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(len(l.order), maxStatusBatch)
	if n == 0 {
		return nil
	}
	batch := make([]StatusUpdate, 0, n)
	for _, id := range l.order[:n] {
		batch = append(batch, l.pending[id])
		delete(l.pending, id)
	}
	l.order = append(l.order[:0:0], l.order[n:]...)
	return batch
}

// requeue puts back the updates of a failed batch, unless a newer update
// for the same task arrived meanwhile.
func (l *Loop) requeue(batch []StatusUpdate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	front := make([]string, 0, len(batch))
	for _, u := range batch {
		if _, newer := l.pending[u.TaskID]; newer {
			continue
		}
		l.pending[u.TaskID] = u
		front = append(front, u.TaskID)
	}
	l.order = append(front, l.order...)
}

// statusLoop sends queued updates in batches: it waits StatusInterval after
// the first update so more can join, then posts until the queue is empty.
// Failed batches are kept and retried with backoff; a batch the origin
// rejects as bad (4xx other than 404, 408, 429) is dropped. It returns an
// error only when the key is revoked.
func (l *Loop) statusLoop(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-l.ready:
	}
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.statusCh:
		}
		if !sleep(ctx, l.o.StatusInterval) {
			return nil
		}
		for {
			batch := l.takeBatch()
			if len(batch) == 0 {
				break
			}
			reply, err := l.c.Status(ctx, batch)
			if err == nil {
				if failures > 0 {
					l.log.Info("origin status batches flowing again", "failed_attempts", failures)
				}
				failures = 0
				l.applyStatusReply(ctx, reply)
				continue
			}
			if ctx.Err() != nil {
				l.requeue(batch) // for the final flush in shutdown
				return nil
			}
			if errors.Is(err, ErrRevoked) {
				return err
			}
			if rejected(err) {
				l.log.Warn("origin rejected a status batch; dropped", "err", err, "updates", len(batch))
				continue
			}
			l.requeue(batch)
			if isStatus(err, http.StatusNotFound) {
				l.registered.Store(false) // the heartbeat registers again
				l.SyncNow()
			}
			failures++
			d := l.backoff(failures)
			l.log.Warn("origin call failed", "call", "status", "err", err, "attempt", failures, "retry_in", d.Round(time.Millisecond))
			if !sleep(ctx, d) {
				return nil
			}
		}
	}
}

// rejected reports a 4xx answer that retrying the same batch cannot fix.
func rejected(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode < 400 || se.StatusCode > 499 {
		return false
	}
	switch se.StatusCode {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return !se.Revoked()
}

func (l *Loop) applyStatusReply(ctx context.Context, r StatusReply) {
	if r.Watching != nil {
		l.setWatching(*r.Watching)
	}
	if len(r.Results) > 0 {
		l.agent.ApplyStatusResults(ctx, r.Results)
	}
}
