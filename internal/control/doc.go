// Package control owns the daemon's control socket: a Unix socket in the data
// directory (mode 0600) that speaks HTTP+JSON under /v1/, for the local CLI
// only. It defines the request and response types, the [Server] that maps
// routes onto a [Backend] (implemented by the daemon), and the [Client] the
// CLI uses.
//
// Full diagnostics live here and nowhere else, so the socket is owner-only
// and every request that carries a browser Origin header is refused. Status
// replies describe tokens ("set, expires at …") but never contain one; only
// the calls that mint a token (AddTask, IssueToken) return it, to the owner
// who asked for it.
//
// control imports engine, token and hls (for their types and sentinel
// errors) and nothing else internal. It must not import config or daemon.
// daemon and cli may import it.
package control
