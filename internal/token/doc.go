// Package token owns the stream-token table: for each task it keeps only the
// SHA-256 of the current token (and of the previous one during the rotation
// grace period) with their expiry, and verifies presented tokens in constant
// time.
//
// It never stores, logs or returns a plain token once it has been set. It
// imports nothing internal; media, control and daemon may import it.
package token
