package clienttest

import "syscall"

// namespacesSupported says whether [Isolate] can make network namespaces on this system.
const namespacesSupported = true

// clientProcAttr makes a client process die with the test process.
func clientProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// namespaceProcAttr starts the re-executed test in a new network namespace, dying with the
// test process.
func namespaceProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
}
