// Package enginetest helps tests run real torrent transfers on loopback: engines with DHT,
// trackers, LSD and uTP off and temporary directories, seeders (optionally rate-limited),
// random fixture files and .torrent files.
//
// It must be imported only from _test.go files. It may import engine (and the torrent library,
// to make .torrent fixtures).
package enginetest
