// Package token owns the stream-token table. For each task it keeps a small,
// bounded set of grants: the SHA-256 of a token, its expiry, who issued it
// (the origin, the local CLI, or the daemon itself for ffmpeg) and its scope
// (the whole task, one HLS session, one file). It verifies presented tokens
// in constant time, doing the same work whether or not the task exists.
//
// It never stores, logs or returns a plain token once a grant is made. It
// imports nothing internal but ids; media, tasks, control and daemon may
// import it.
package token
