// Package control owns the daemon's control socket: a Unix socket in the data
// directory (mode 0600) that speaks HTTP+JSON under /v1/, for the local CLI
// only. It defines the request and response types, the [Server] that maps
// routes onto a [Backend] (implemented by the daemon), and the [Client] the
// CLI uses.
//
// Full diagnostics live here and nowhere else, so the socket is owner-only
// and every request that carries a browser Origin header is refused. Status
// replies describe grants ("2 grants, next expiry …", "locked") but never
// contain a token; only
// the calls that mint a token (AddTask, IssueToken) return it, to the owner
// who asked for it.
//
// control imports tasks (for its types and sentinel errors, which include the
// engine's and the HLS manager's) and nothing else internal. It must not import config or daemon.
// daemon and cli may import it.
package control
