// Package hls turns one media input (an HTTP URL that supports Range, in
// the daemon its own /stream on loopback) into an HLS VOD presentation made
// on demand by ffmpeg: master.m3u8; the video's index.m3u8 and MPEG-TS
// segments (seg-00000.ts, ...); one audio rendition per audio track
// (audio-<k>.m3u8, a<k>-00000.ts, ...); one WebVTT subtitle rendition per
// text subtitle track, embedded or a sidecar file (subs-<k>.m3u8,
// subs-<k>.vtt).
//
// # Tracks
//
// Every audio track is an EXT-X-MEDIA:TYPE=AUDIO rendition, copied when it
// is AAC-LC mono/stereo and re-encoded to AAC stereo otherwise, with its
// own ffmpeg started by the first request for one of its segments: only
// tracks a player plays cost CPU, and switching language never touches the
// video's ffmpeg. The video segments carry no audio. Audio segments have the
// video's boundaries and timestamps (same cut list, same -ss and
// -output_ts_offset), within one audio frame. When the video's ffmpeg
// restarts at a segment (a seek), the audio rendition the player last asked
// for is started there too, unless that segment is made or on its way: a
// seeking player needs both, and hls.js may ask for the audio only once the
// video segment has arrived. Audio ffmpeg processes, and video ones that
// copy the video, do not take MaxTranscodes slots (they cost a few percent
// of a core and a player needs one next to the video's).
//
// A player may name itself (SegmentFor): each named player gets runs of its
// own, up to two per track, so two players far apart in one session are
// served at once; unnamed players share one run per track.
//
// Every text subtitle track (SRT, ASS/SSA, mov_text, WebVTT) and every
// sidecar the caller passes (FindSidecars matches them by name) is an
// EXT-X-MEDIA:TYPE=SUBTITLES rendition: one WebVTT file for the whole
// title, converted on first request, with an X-TIMESTAMP-MAP tying cue time
// 0 to the video's first MPEG-TS timestamp. An embedded track is read from
// the whole input. Bitmap subtitles (PGS, VobSub) are listed in Info, and
// burnt into the (then transcoded) video only with
// TrackOptions.BurnImageSubtitles. TrackOptions' languages pick the
// DEFAULT renditions; every track is offered regardless.
//
// # Tokens and ffmpeg's arguments
//
// A process's arguments are public on the host (/proc/<pid>/cmdline), and
// the input URL carries a token. ffmpeg and ffprobe are therefore given a
// token-free URL and reach the input through a loopback proxy owned by the
// Manager, authenticating with a per-session secret passed in their
// environment (http_proxy), which only our user can read (see proxy.go).
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
// When a run starts at a segment, or a request waits for one a few
// segments ahead of the running ffmpeg, and the input is Matroska or MP4
// (whose Cues, or chunk tables, give each keyframe's position), the session reads those
// segments' bytes itself, in a few parallel Range requests, while ffmpeg is
// still starting (prefetch.go): a torrent input is asked for the bytes at
// once instead of after ffmpeg's start, and for all of their pieces at once
// instead of one at a time. The prefetch is cancelled when the player moves
// elsewhere, when its last segment is done, or on Close.
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
//   - Otherwise video is transcoded (libx264 superfast with -tune
//     zerolatency, CRF 21 capped by the variant's -maxrate, High profile, at
//     most 1920x1080) with keyframes forced on a fixed SegmentSeconds grid,
//     which is then the plan. zerolatency: a segment is complete only when
//     the encoder emits the next one's first frame, and x264's lookahead
//     would hold every segment (a seek's first one too) back by about 16
//     frames. A seek therefore waits for ffmpeg's start (about 140 ms of CPU
//     for Debian's build, most of it loading shared libraries), the input's
//     open and -ss (decoding from the keyframe before the cut), and one whole
//     segment's encoding, most of it from 720p up: superfast rather than
//     veryfast makes that a third shorter for about 0.001 of SSIM at the
//     same bytes; docs/benchmarks.md has the figures.
//   - Audio is copied only when it is AAC-LC mono/stereo, otherwise encoded
//     to AAC-LC stereo at 160 kb/s; audio never decides a cut.
//
// So in copy mode segment lengths follow the source's keyframes: a source
// with a keyframe every 10 s gets 10 s segments whatever SegmentSeconds
// says (and one with keyframes more than 20 s apart is transcoded). Info's
// Mode says which path a session takes.
//
// Every run, wherever it starts, writes the source timestamps (relative to
// the container start) plus MPEG-TS's fixed 1.4 s offset, so segments from
// different runs line up.
//
// A copy run that starts at a segment makes ffmpeg's demuxer land on that
// segment's own keyframe (ffmpeg.go, landing): ffmpeg seeks the demuxer to
// the last keyframe at or before -ss, minus 3/23 s when the container does
// not seek by presentation time and a stream has B-frames (Matroska, not
// MP4), so the run asks for just past the keyframe plus that lead, in whole
// ticks of every stream's time base, and keeps the packets in between. A
// -ss at or before the keyframe would read the whole GOP before it first:
// with a 10 s GOP at 4 Mbit/s, 5 MB a seek into a downloading torrent waits
// for. When the next keyframe is too close for that, the run asks for 1 ms
// before the keyframe as before and the prefetch starts at the keyframe the
// demuxer lands on instead.
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
