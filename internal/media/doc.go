// Package media owns the media listener: the only HTTP surface players and
// browsers touch. It serves
//
//   - GET/HEAD /stream?id=&t=[&file=]   a task's file while it downloads
//   - GET /playlist.m3u?id=&t=          an M3U playlist of a task's playable files
//   - GET /hls/{session}/{resource}?t=  HLS playlists and segments of a session
//   - GET /health                       {"status":"ok","version":"…"}
//   - OPTIONS *                          CORS and Private Network Access preflights
//
// Every media route authorizes first, before it looks anything up, and answers
// every failure (unknown task, wrong, expired or missing token, malformed
// input, closed session) with the same 404 after the same work, so no route
// reveals whether something is streaming. Bytes are served only through
// [net/http.ServeContent]; Range is never parsed here.
//
// The package must not: import config, log a token or a URL carrying one,
// trust the caller's address (a local proxy makes everyone look local), echo
// an arbitrary Host header, or set a hard write timeout on media routes.
//
// It imports engine, token and hls. Only daemon (and tests) may import it.
package media
