// Package engine is the torrent client of the daemon: one anacrolix/torrent client per
// [Engine], the task table, file selection, piece priorities and the streaming [Reader].
//
// What it owns:
//   - the BitTorrent listen port (TCP, and UDP for uTP/DHT when enabled); port forwarding is
//     never done here (UPnP lives in internal/upnp);
//   - the piece-completion database and the metainfo cache in [Options.DataDir], so a restarted
//     engine that re-adds a torrent neither re-downloads verified pieces nor needs peers for
//     metadata;
//   - every byte written under [Options.DownloadDir]. Torrent file names are sanitised (no
//     absolute paths, no ".." components, no NUL or control characters, no collisions) and a
//     task whose files would be written through a symlink is failed: nothing is ever written
//     outside DownloadDir. Torrents made by [Engine.Seed] are served from where they are and
//     never written to.
//
// Streaming: [Task.OpenFile] returns a [Reader] that serves only verified bytes. Each reader
// claims a graded window of piece priorities (Now, Next, Readahead, High) at its position,
// set before the first read after a seek, and releases it when it moves or closes. The head
// and tail of the file being streamed are fetched first (MP4 moov / MKV cues may be at the end).
// Because the library requests in large batches that peers may serve in any order, a read
// after a seek (or one blocked for a second) puts the task in "urgent mode" for a moment:
// only the pieces readers wait for stay wanted and queued requests are cancelled and re-issued
// (see urgent.go). The client is also configured around two library bugs (peer-request buffer
// deadlock, lost writer wake-ups); see New.
//
// Integrity (integrity.go, completion.go): a piece whose file may have changed since it was
// verified (size or mtime against a record kept in DataDir/verified, or an unclean stop) is
// hashed again before it is served or uploaded, in the background at [Options.VerifyRateBytes];
// one that fails is fetched again. A corrupt piece database is moved aside and the pieces are
// verified from the files ([Engine.Recoveries]). Metainfo over [Options.MaxFiles] or
// [Options.MaxNameBytes] is refused (bounds.go).
//
// A storage write that fails (a full disk above all) stops the task's downloading with
// [ErrDiskFull] or [ErrWrite] in its Status and in reads of missing data, logged once;
// verified data stays readable; the task retries by itself with backoff once a piece fits
// again, and [Engine.Resume] retries at once (see diskfull.go).
//
// Lifetimes: [New] binds the listen port and starts the client and one maintenance goroutine
// (speed sampling, seeding limits, cooling of idle stream tasks); [Engine.Close] stops all of
// them and waits. anacrolix/torrent v1.59.1 has no Local Service Discovery, so
// [Options.DisableLSD] is accepted and has no effect.
//
// It must not import config, read global state, or log URLs. Only daemon, media, control and
// tests import it; anacrolix/torrent is used only here and in internal/enginetest.
package engine
