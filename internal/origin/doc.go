// Package origin is the daemon's side of the torrentclaw web protocol
// (docs/protocol.md): the wire types, a [Client] for each call, and a [Loop]
// that keeps the daemon registered and in sync.
//
// It owns:
//   - the JSON wire types, and their tolerant decoding: replies are decoded
//     entry by entry ([DecodeSyncReply], [DecodeStatusReply]), so one
//     malformed entry is skipped with a log line (field, index, error kind;
//     never the entry's content) while the others apply; unknown fields are
//     ignored; bodies are capped at 1 MiB;
//   - [Client]: Bearer API key, User-Agent torrentclaw/<version>, 30 s per
//     call, typed errors ([StatusError]; 401/403/410 match [ErrRevoked]);
//   - [Loop]: register, the sync heartbeat (at once, every 10 s, every 3 s
//     while watching, at once on a wake), the downlink (SSE "GET events"
//     with size caps and a liveness timeout, falling back to "GET wake" long
//     poll), status batches ([Loop.Report]), session-ready/-error, exponential
//     backoff with jitter (cap 60 s), re-register when the origin forgot the
//     agent, and deregister on a clean shutdown.
//
// The daemon implements the consumer interface [Agent] (three methods:
// Snapshot for what to report, Apply for sync replies, ApplyStatusResults for
// status answers) and applies what it is told to the engine, the token table
// and HLS; origin itself touches none of them.
//
// Secrets: the API key and stream tokens never appear in logs or errors.
// Tokens stay plain strings in the wire types (origin may not import the
// token package); the types that carry them implement slog.LogValuer without
// the token, and errors from the origin are scrubbed of the key and of
// token-like words.
//
// Revocation (401/403/410) stops [Loop.Run] with one error matching
// [ErrRevoked]; local streaming is unaffected.
//
// origin imports only netaddr among internal packages, and only the daemon
// imports origin.
package origin
