package hls

// Stats are the manager's figures for metrics.
type Stats struct {
	Sessions int   // open sessions
	Restarts int64 // ffmpeg processes replaced by one at another position (seeks), in total
}

// Stats returns the manager's figures.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	n := len(m.sessions)
	m.mu.Unlock()
	return Stats{Sessions: n, Restarts: m.restarts.Load()}
}
