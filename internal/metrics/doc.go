// Package metrics serves the daemon's Prometheus metrics at /metrics on their
// own listener (config metrics.listen; off by default). Every name starts
// with torrentclaw_.
//
// The package owns the registry and the only use of
// prometheus/client_golang. It imports nothing internal: the daemon hands it
// a Snapshot function that reads the engine, media listener and HLS manager
// at scrape time, and feeds it the one event stream that needs a histogram
// (time to first byte after a seek). Labels never carry tokens, URLs, file
// names or client addresses: the only label is a task's status.
//
// Only daemon imports it.
package metrics
