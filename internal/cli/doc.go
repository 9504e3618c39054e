// Package cli is the torrentclaw command tree (cobra): flag parsing,
// precedence (flags > environment > file > defaults), human and --json
// output, and exit codes. [Main] is the only place errors become exit codes
// and user-facing text: one line "torrentclaw: <message>" on stderr, exit 1
// (2 for usage errors), never a stack trace.
//
// Every command has the same shape: newXCmd(env, runF) builds it, an
// xOptions struct holds its parsed flags and the dependencies it uses, and
// runX(ctx, opts) does the work, so tests can check parsing through runF and
// behaviour by calling runX with buffers.
//
// stdout carries only the requested output; progress, hints and warnings go
// to stderr. Nothing below [Main] touches os.Stdout, os.Stderr or os.Exit.
//
// cli imports config, control (the client) and daemon (to run one, and to
// find its socket); cobra is used here and nowhere else. Only cmd/torrentclaw
// imports cli.
package cli
