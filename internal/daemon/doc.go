// Package daemon wires the long-lived torrentclaw process together: it
// translates a [config.Config] into each component's Options, owns their
// lifetimes (one errgroup, shut down in reverse order of start), keeps the
// state file, and applies what the origin and the control socket ask for to
// the engine, the token table and the HLS manager.
//
// It is the only package that imports every other component. Only cli may
// import it.
package daemon
