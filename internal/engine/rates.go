package engine

import (
	"errors"
	"math"

	"golang.org/x/time/rate"
)

// minDownloadBurst is the download limiter's smallest burst: the library reads peer
// messages in chunks of up to this size through it.
const minDownloadBurst = 1 << 20

// newRateLimiters returns the engine's own upload and download limiters (never the
// library's shared defaults, so engines in one process do not limit each other), set to
// the given rates in bytes per second (0 = unlimited). The library reads their limits on
// every use, so [Engine.SetRates] takes effect at once.
func newRateLimiters(upBytes, downBytes int64) (up, down *rate.Limiter) {
	up, down = rate.NewLimiter(rate.Inf, 0), rate.NewLimiter(rate.Inf, 0)
	setUploadRate(up, upBytes)
	setDownloadRate(down, downBytes)
	return up, down
}

func setUploadRate(l *rate.Limiter, bytes int64) {
	if bytes <= 0 {
		l.SetLimit(rate.Inf)
		return
	}
	// The burst must hold a whole chunk (16 KiB) and bounds the longest request we serve.
	l.SetBurst(int(min(max(bytes/4, 64<<10), 1<<20)))
	l.SetLimit(rate.Limit(bytes))
}

func setDownloadRate(l *rate.Limiter, bytes int64) {
	if bytes <= 0 {
		l.SetLimit(rate.Inf)
		return
	}
	l.SetBurst(int(min(max(bytes, minDownloadBurst), math.MaxInt32)))
	l.SetLimit(rate.Limit(bytes))
}

// SetRates changes the upload and download limits, in bytes per second (0 = unlimited),
// while the engine runs.
func (e *Engine) SetRates(upBytes, downBytes int64) error {
	if upBytes < 0 || downBytes < 0 {
		return errors.New("engine: negative rate")
	}
	setUploadRate(e.upLimit, upBytes)
	setDownloadRate(e.downLimit, downBytes)
	return nil
}
