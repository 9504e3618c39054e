package enginetest

import (
	"testing"
	"time"
)

func TestSwarmLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		rates            []int64
		total, top       int64
		fullLim, pieceLm time.Duration
	}{
		{"bench", BenchRates, 11_000_000, 8_000_000, 24403223 * time.Microsecond, 524288 * time.Microsecond},
		{"one", []int64{4 << 20}, 4 << 20, 4 << 20, 64 * time.Second, time.Second},
		{"unlimited", []int64{8_000_000, 0}, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Swarm{Size: 256 << 20, PieceLength: 4 << 20, Rates: tt.rates}
			if got := s.TotalRate(); got != tt.total {
				t.Errorf("TotalRate() = %d, want %d", got, tt.total)
			}
			if got := s.MaxRate(); got != tt.top {
				t.Errorf("MaxRate() = %d, want %d", got, tt.top)
			}
			if got := s.FullLimit().Round(time.Microsecond); got != tt.fullLim {
				t.Errorf("FullLimit() = %v, want %v", got, tt.fullLim)
			}
			if got := s.PieceLimit().Round(time.Microsecond); got != tt.pieceLm {
				t.Errorf("PieceLimit() = %v, want %v", got, tt.pieceLm)
			}
		})
	}
}

func TestSwarmSeekOffsets(t *testing.T) {
	t.Parallel()
	s := &Swarm{Size: 1 << 20}
	a, b := s.SeekOffsets(50, 256<<10, 7), s.SeekOffsets(50, 256<<10, 7)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("offset %d: %d then %d, want reproducible", i, a[i], b[i])
		}
		if a[i] < 0 || a[i]+256<<10 > s.Size {
			t.Errorf("offset %d = %d: a 256 KiB read does not fit in %d bytes", i, a[i], s.Size)
		}
	}
}
