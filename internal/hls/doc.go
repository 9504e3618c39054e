// Package hls turns one media input (an HTTP URL that supports Range, in
// the daemon its own /stream on loopback) into an HLS VOD rendition made on
// demand by ffmpeg: master.m3u8, index.m3u8 and MPEG-TS segments
// (seg-00000.ts, seg-00001.ts, ...).
//
// # What it owns
//
// [Manager] owns the sessions, the ffmpeg/ffprobe processes, the session
// directories under Options.Dir and the bounds: MaxSessions, MaxTranscodes
// (running ffmpeg processes, a semaphore; a paused ffmpeg of another session
// is preempted before a request waits), IdleTimeout (Run's reaper closes
// sessions nobody touched) and MaxDiskBytes (least recently used segments
// outside any player's window are deleted; past that, ffmpeg pauses).
// CopyOnly refuses inputs whose video would need re-encoding.
//
// # How a session works
//
// Create starts a probe: ffprobe reads only the head of the input (and the
// tail where the container keeps its index), limited by -probesize and
// -analyzeduration, because the input may be a torrent that is still
// downloading. From then on both playlists exist in full: a VOD playlist
// covering the whole title, before any segment is made.
//
// Segments are made by one ffmpeg per session using the segment muxer with
// an explicit list of cut times; it reports each finished segment on stdout,
// and the part file is then renamed into place, so a segment is served only
// when complete. A request just ahead of the running ffmpeg waits for it
// (concurrent requests share that wait); a request behind it or more than
// three segments ahead restarts it there (-ss). An ffmpeg more than about a
// minute ahead of the player's last request is paused with SIGSTOP and
// continued when the player catches up.
//
// # Truthful playlists: copy versus transcode
//
// Each EXTINF must equal the duration of the segment ffmpeg actually
// writes, and each segment's timestamps must equal the sum of the EXTINFs
// before it, or players stall and seek wrong. The rule:
//
//   - Stream copy cuts only on source keyframes. Video is copied only when
//     it is 8-bit 4:2:0 H.264 (Baseline/Main/High) AND the container's own
//     keyframe index can be read cheaply: the MP4 moov sample tables (stss,
//     stts, ctts, elst) or the Matroska Cues, fetched with a few Range
//     requests at the head or tail of the file. Segment boundaries are then
//     chosen among those keyframes (nearest to SegmentSeconds), and ffmpeg is
//     given exactly those cut times. Real files with irregular GOPs get
//     irregular but exact EXTINFs.
//   - Otherwise video is transcoded (libx264 veryfast, High profile, at most
//     1920x1080) with keyframes forced on a fixed SegmentSeconds grid, which
//     is then the plan.
//   - Audio is copied only when it is AAC-LC mono/stereo, otherwise encoded
//     to AAC-LC stereo at 160 kb/s; audio never decides a cut.
//
// Every run, wherever it starts, writes the source timestamps (relative to
// the container start) plus MPEG-TS's fixed 1.4 s offset, so segments from
// different runs line up.
//
// # Processes
//
// ffmpeg and ffprobe run in their own process group with Pdeathsig SIGKILL
// (Linux), started from a goroutine locked to its OS thread until the child
// is reaped. Close kills the group and waits for the process, on every exit
// path; no child survives Close, Manager.Close or a crash of the daemon.
//
// # What it must not do
//
// It never logs the input URL or ffmpeg output containing it (the URL
// carries a token), never parses media data beyond the container index, and
// imports nothing from this module. Tokens only pass through: Playlist puts
// the caller's token on every child URI.
//
// # Who imports it
//
// media (serves /hls/<session>/<resource>), control (status) and daemon
// (wiring, origin stream sessions).
package hls
