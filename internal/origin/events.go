package origin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// maxEventFailures is how many event-stream attempts in a row may fail or
// stall before the loop falls back to long poll.
const maxEventFailures = 3

var (
	errStalled       = errors.New("origin events: no data within the liveness timeout")
	errEventTooLarge = errors.New("origin events: line or event over the size cap")
	errStreamEnded   = errors.New("origin events: stream ended")
)

// downlink keeps a wake channel open to the origin: the SSE event stream
// when offered, else the wake long poll. Every wake turns into SyncNow. After
// the downlink was interrupted, the first successful (re)connection also
// triggers a sync, so a wake lost meanwhile costs nothing. It returns an
// error only when the key is revoked.
func (l *Loop) downlink(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case <-l.ready:
	}
	var (
		useEvents = true
		pollSince time.Time // when the loop fell back to long poll
		failures  int       // consecutive failures of the current mode
		lost      bool      // the downlink was interrupted since the last sync it triggered
	)
	toLongPoll := func() {
		useEvents, pollSince, failures = false, time.Now(), 0
	}
	for ctx.Err() == nil {
		if !useEvents && time.Since(pollSince) >= l.o.EventsRetry {
			useEvents, failures = true, 0
			l.log.Info("origin events: trying the event stream again")
		}
		if useEvents {
			got, err := l.streamEvents(ctx, lost)
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrRevoked) {
				return err
			}
			lost = true
			switch {
			case errors.Is(err, errEventsUnsupported):
				l.log.Info("origin offers no event stream; using long poll", "err", err)
				toLongPoll()
				continue
			case got && errors.Is(err, errStreamEnded):
				failures = 0 // a healthy stream that ended: reconnect after a short pause
				l.log.Debug("origin event stream ended; reconnecting")
			default:
				failures++
				l.log.Warn("origin event stream failed", "err", err, "attempt", failures)
				if failures >= maxEventFailures {
					l.log.Warn("origin event stream keeps failing; falling back to long poll", "retry_events_in", l.o.EventsRetry)
					toLongPoll()
					continue
				}
			}
			l.setDownlink(DownlinkNone)
			if !sleep(ctx, l.backoff(max(failures, 1))) {
				return nil
			}
			continue
		}

		start := time.Now()
		wake, err := l.c.wake(ctx, l.o.LongPollTimeout)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrRevoked) {
				return err
			}
			lost = true
			l.setDownlink(DownlinkNone)
			if isStatus(err, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented) {
				l.log.Warn("origin offers neither events nor wake; relying on the heartbeat", "retry_in", l.o.EventsRetry)
				if !sleep(ctx, l.o.EventsRetry) {
					return nil
				}
				useEvents, failures = true, 0
				continue
			}
			failures++
			d := l.backoff(failures)
			l.log.Warn("origin wake poll failed", "err", err, "attempt", failures, "retry_in", d.Round(time.Millisecond))
			if !sleep(ctx, d) {
				return nil
			}
			continue
		}
		failures = 0
		l.setDownlink(DownlinkLongPoll)
		if wake || lost {
			lost = false
			l.SyncNow()
		}
		// An origin that answers at once must not be polled in a tight loop.
		if gap := l.o.BackoffBase - time.Since(start); !wake && gap > 0 {
			if !sleep(ctx, gap) {
				return nil
			}
		}
	}
	return nil
}

// streamEvents holds one GET events connection until it ends, stalls or
// breaks the size caps. got reports whether any byte arrived. resync asks
// for a sync once the stream is open.
func (l *Loop) streamEvents(ctx context.Context, resync bool) (got bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The liveness timer covers the connect and every read: no byte within
	// EventsIdleTimeout cancels the request.
	idle := time.AfterFunc(l.o.EventsIdleTimeout, func() { cancel(errStalled) })
	defer idle.Stop()

	resp, err := l.c.openEvents(ctx)
	if err != nil {
		if errors.Is(context.Cause(ctx), errStalled) {
			return false, errStalled
		}
		return false, err
	}
	defer resp.Body.Close()
	idle.Reset(l.o.EventsIdleTimeout)
	l.setDownlink(DownlinkEvents)
	if resync {
		l.SyncNow()
	}
	r := &activityReader{r: resp.Body, idle: idle, timeout: l.o.EventsIdleTimeout}
	err = readEvents(r, l.o.MaxEventBytes, func() {
		l.log.Debug("origin event", "event", "sync")
		l.SyncNow()
	})
	if errors.Is(context.Cause(ctx), errStalled) {
		return r.got, errStalled
	}
	return r.got, err
}

// activityReader pushes the liveness deadline forward on every byte.
type activityReader struct {
	r       io.Reader
	idle    *time.Timer
	timeout time.Duration
	got     bool
}

func (a *activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.got = true
		a.idle.Reset(a.timeout)
	}
	return n, err
}

// readEvents parses a text/event-stream (lines end in LF, CRLF or CR; an
// empty line dispatches the event; lines starting with ':' are comments)
// and calls onSync for a "sync" (or "wake") event, or a data-only event
// whose data is "sync". It returns errEventTooLarge when a line or an
// event's data exceeds maxBytes, errStreamEnded at EOF, or the read error.
func readEvents(r io.Reader, maxBytes int, onSync func()) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(4096, maxBytes)), maxBytes)
	sc.Split(scanEventLines)
	var (
		name    string
		data    []byte // the first bytes of the data, enough to recognise "sync"
		dataLen int
	)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if name == "sync" || name == "wake" || (name == "" || name == "message") && string(data) == "sync" {
				onSync()
			}
			name, data, dataLen = "", data[:0], 0
			continue
		}
		if line[0] == ':' {
			continue // comment / keepalive
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			if dataLen > 0 && len(data) < 16 {
				data = append(data, '\n')
			}
			dataLen += len(value) + 1
			if dataLen > maxBytes {
				return errEventTooLarge
			}
			if len(data) < 16 {
				data = append(data, value[:min(len(value), 16)]...)
			}
		}
		// id and retry are ignored: reconnection follows our own backoff.
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return errEventTooLarge
		}
		return err
	}
	return errStreamEnded
}

// scanEventLines splits on LF, CRLF or a lone CR.
func scanEventLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		if data[i] == '\n' {
			return i + 1, data[:i], nil
		}
		switch {
		case i+1 < len(data) && data[i+1] == '\n':
			return i + 2, data[:i], nil
		case i+1 < len(data) || atEOF:
			return i + 1, data[:i], nil
		default:
			return 0, nil, nil // a CR at the end: wait to see whether LF follows
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
