// Package ids holds the one rule for each identifier that crosses a trust
// boundary: task IDs, HLS session IDs, stream-token shapes and info hashes.
// Every package that accepts one of these from outside (origin, media,
// control, engine, hls, token, the CLI) validates it here, so a value one
// of them accepts is never refused by another.
//
// It only inspects strings: no I/O, no state. It imports nothing internal,
// and every package may import it.
package ids
