package media

import (
	"fmt"
)

// originSet normalises origins ("scheme://host[:port]") into a set.
func originSet(list []string) (map[string]bool, error) {
	origins := make(map[string]bool, len(list))
	for _, o := range list {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("media: cors origin %q: %w", o, err)
		}
		origins[n] = true
	}
	return origins, nil
}

// SetCORSOrigins replaces the origins allowed to read media, while serving.
// On error the previous set stays.
func (s *Server) SetCORSOrigins(list []string) error {
	origins, err := originSet(list)
	if err != nil {
		return err
	}
	s.origins.Store(&origins)
	return nil
}

// ReloadCertificates re-reads the TLS certificate and key files now, instead
// of at the next check after they change. On error the previous pair stays
// in use. It returns [ErrNoTLS] when no files are configured.
func (s *Server) ReloadCertificates() error {
	if s.certs == nil {
		return ErrNoTLS
	}
	return s.certs.load()
}
