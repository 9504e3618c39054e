package engine

import "testing"

func TestIsDHTAnnounceError(t *testing.T) {
	tests := []struct {
		msg  string
		want bool
	}{
		{`5299a3: error announcing "\"x\"" to DHT: getting starting nodes: nothing resolved`, true},
		{"error bootstrapping during bucket refresh: getting starting nodes: nothing resolved", true},
		{"writing received chunk", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := isDHTAnnounceError(tc.msg); got != tc.want {
			t.Errorf("isDHTAnnounceError(%q) = %v, want %v", tc.msg, got, tc.want)
		}
	}
}
