// Package logtest collects what a test's goroutines and child processes write — slog
// output, a process's stdout and stderr, a command's output — in a [Buffer] the test reads
// while they still write (to search logs for secrets, or to poll a process's output).
//
// It must not: write anywhere but memory, or know what it collects.
//
// It must be imported only from _test.go files (internal/depcheck enforces this). It
// imports nothing internal and no third-party package.
package logtest
