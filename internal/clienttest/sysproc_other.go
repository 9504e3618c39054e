//go:build !linux

package clienttest

import "syscall"

// Network namespaces are Linux's: elsewhere [Isolate] skips (or fails, with
// TORRENTCLAW_E2E=required) before starting anything, and no client is ever started.
const namespacesSupported = false

func clientProcAttr() *syscall.SysProcAttr { return nil }

func namespaceProcAttr() *syscall.SysProcAttr { return nil }
