package engine

import (
	"errors"
	"strings"
	"time"

	"github.com/anacrolix/dht/v2"
)

// dhtRetryDelay is how long a failed DHT bootstrap lookup waits before it
// reports the failure.
const dhtRetryDelay = 30 * time.Second

// errNoBootstrap reports a DHT bootstrap lookup that found no node.
var errNoBootstrap = errors.New("no dht bootstrap node resolved")

// dhtStartingNodes wraps the library's bootstrap lookup. When it finds no
// node (no network, no DNS), the library's per-torrent announcer retries at
// once, in a tight loop that logs every failure: hundreds of thousands of
// lines a minute and a busy core on an offline LAN. Waiting here before
// failing turns that into one attempt every dhtRetryDelay; the wait ends
// when the engine closes.
func (e *Engine) dhtStartingNodes(network string) dht.StartingNodesGetter {
	return func() ([]dht.Addr, error) {
		addrs, err := dht.GlobalBootstrapAddrs(network)
		if err == nil && len(addrs) > 0 {
			return addrs, nil
		}
		t := time.NewTimer(dhtRetryDelay)
		defer t.Stop()
		select {
		case <-e.stop:
		case <-t.C:
		}
		if err == nil {
			err = errNoBootstrap
		}
		return nil, err
	}
}

// isDHTAnnounceError matches the library's per-attempt announce and
// bootstrap failure log lines, which are noise while the DHT has no nodes.
func isDHTAnnounceError(msg string) bool {
	return strings.Contains(msg, "to DHT: ") || strings.Contains(msg, "getting starting nodes")
}
