package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/torrentclaw/cli/internal/engine"
)

// SeederOptions configure a [Seeder].
type SeederOptions struct {
	// DataDir holds the seeder's piece-completion database.
	DataDir string
	// ListenHost is where the BitTorrent listener binds; "127.0.0.1" for a
	// loopback-only demo.
	ListenHost string
	Logger     *slog.Logger
}

// Seeder is a BitTorrent client that only seeds local files. The demo uses
// one as the "swarm" the daemon streams from.
type Seeder struct {
	eng *engine.Engine
}

// SeedInfo describes a seeded torrent.
type SeedInfo struct {
	Magnet   string
	InfoHash string
	Peer     string
}

// NewSeeder starts a seeding-only client with DHT, trackers, LSD and UTP off.
// The caller must Close it.
func NewSeeder(opts SeederOptions) (*Seeder, error) {
	e, err := engine.New(engine.Options{
		DataDir:         opts.DataDir,
		DownloadDir:     opts.DataDir,
		ListenHost:      opts.ListenHost,
		DisableDHT:      true,
		DisableTrackers: true,
		DisableLSD:      true,
		DisableUTP:      true,
		Seed:            true,
		Logger:          opts.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("start seeder: %w", err)
	}
	return &Seeder{eng: e}, nil
}

// Seed makes a torrent of path and seeds it from where it is.
func (s *Seeder) Seed(ctx context.Context, path string) (SeedInfo, error) {
	si, err := s.eng.Seed(ctx, path)
	if err != nil {
		return SeedInfo{}, err
	}
	return SeedInfo{Magnet: si.Magnet, InfoHash: si.InfoHash, Peer: si.Peer.String()}, nil
}

// Close stops seeding.
func (s *Seeder) Close() error { return s.eng.Close() }
