// Package classicio makes the torrent library's file storage use plain
// reads and writes instead of memory maps. Only engine imports it, for its
// side effect.
//
// The library (anacrolix/torrent v1.59.1) maps every file it writes and
// never unmaps it: a long-running daemon's resident memory grew by the size
// of everything it streamed (831 MiB for one 256 MiB film in the swarm
// benchmark, 46 MiB with plain I/O), a removed task's deleted files kept
// their disk space until restart, and a write the disk could not hold killed
// the process with SIGBUS. The library reads its choice from the
// environment once, in its own init, so this package sets the environment
// variable in a package-level initializer.
//
// Go initializes packages in dependency order, choosing among the ready ones
// by import path (Go spec, "Package initialization"). This package imports
// only os, so it is ready long before the library's storage package, which
// depends on golang.org/x packages whose paths sort after this one: it is
// therefore initialized first. engine's TestStorageDoesNotMap checks the
// effect, so a change in that order cannot go unnoticed.
//
// An explicit TORRENT_STORAGE_DEFAULT_FILE_IO in the environment wins.
package classicio
