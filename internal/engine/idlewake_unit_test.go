package engine

import (
	"testing"
	"time"

	"github.com/anacrolix/torrent"
)

func TestWakeBackoff(t *testing.T) {
	a, b := &torrent.Peer{}, &torrent.Peer{}
	cases := []struct {
		name      string
		last, now map[*torrent.Peer]int
		interval  time.Duration
		want      time.Duration
	}{
		{"first wake", nil, map[*torrent.Peer]int{a: 3}, 0, 0},
		{"same connection, nothing sent since", map[*torrent.Peer]int{a: 3}, map[*torrent.Peer]int{a: 3}, 0, 2 * wakeIdleTick},
		{"again", map[*torrent.Peer]int{a: 3}, map[*torrent.Peer]int{a: 3}, 2 * wakeIdleTick, 4 * wakeIdleTick},
		{"bounded", map[*torrent.Peer]int{a: 3}, map[*torrent.Peer]int{a: 3}, wakeIdleMax, wakeIdleMax},
		{"it asked since: a new spell", map[*torrent.Peer]int{a: 3}, map[*torrent.Peer]int{a: 9}, wakeIdleMax, 0},
		{"another connection idle too", map[*torrent.Peer]int{a: 3}, map[*torrent.Peer]int{a: 3, b: 1}, time.Second, 0},
		{"fewer idle, none woken", map[*torrent.Peer]int{a: 3, b: 1}, map[*torrent.Peer]int{b: 1}, time.Second, 2 * time.Second},
	}
	for _, c := range cases {
		if got := wakeBackoff(c.last, c.now, c.interval); got != c.want {
			t.Errorf("%s: wakeBackoff = %v, want %v", c.name, got, c.want)
		}
	}
}
