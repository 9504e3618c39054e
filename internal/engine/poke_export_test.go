package engine

import "github.com/anacrolix/torrent"

// Hooks for the poke tests (poke_test.go).

// Poke runs the poke urgent mode runs when no block has arrived for urgentQuiet, and
// reports whether it pulsed a piece (rather than toggling uploads).
func Poke(t *Task) bool { return t.poke() }

// PeerConnTo returns the task's live connection to the peer at addr (host:port), or nil.
func PeerConnTo(t *Task, addr string) any {
	for _, pc := range t.tor.PeerConns() {
		if pc.RemoteAddr.String() == addr {
			return pc
		}
	}
	return nil
}

// ConnAlive reports whether conn (from PeerConnTo) is still one of the task's connections.
func ConnAlive(t *Task, conn any) bool {
	pc, ok := conn.(*torrent.PeerConn)
	if !ok {
		return false
	}
	for _, c := range t.tor.PeerConns() {
		if c == pc {
			return true
		}
	}
	return false
}

// KickNow cancels every outstanding request of t as a kick does (kick.go), whatever the
// queues hold.
func KickNow(t *Task) { t.cancelRequests(t.tor.PeerConns()) }

// Waiting returns how many reads of t wait for missing pieces.
func Waiting(t *Task) int { return int(t.waiting.Load()) }

// Kicks returns how often a seek on t cancelled the outstanding requests (kick.go).
func Kicks(t *Task) int64 { return t.kicks.Load() }
