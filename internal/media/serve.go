package media

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
)

// Serve serves the media routes on ln until ctx is done, then shuts down
// gracefully: it stops accepting, waits up to ShutdownGrace for requests in
// flight, and closes what is left. It returns nil after a clean shutdown.
// ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.newHTTPServer()
	ln = s.limit(ln)
	return s.run(ctx, srv, func() error { return srv.Serve(ln) })
}

// ServeTLS is Serve over TLS 1.2 or newer with the certificate from
// TLSCertFile and TLSKeyFile, reloaded when the files change. A missing or
// invalid certificate is an error at once; a later bad replacement keeps the
// last good certificate and logs a warning.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener) error {
	if s.certs == nil {
		return ErrNoTLS
	}
	if err := s.certs.load(); err != nil {
		return err
	}
	srv := s.newHTTPServer()
	ln = s.limit(ln)
	srv.TLSConfig = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.certs.getCertificate,
	}
	return s.run(ctx, srv, func() error { return srv.ServeTLS(ln, "", "") })
}

func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// No WriteTimeout: see writeDeadlines.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

func (s *Server) run(ctx context.Context, srv *http.Server, serve func() error) error {
	errc := make(chan error, 1) // buffered: serve's goroutine never blocks on send
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return fmt.Errorf("media: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// Streams still open after the grace period: cut them.
		err = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("media: shutdown: %w", err)
	}
	return nil
}

// limit applies the connection caps to ln. The first refusal is logged once
// as a warning (a flood would otherwise flood the log too), later ones at
// debug level.
func (s *Server) limit(ln net.Listener) net.Listener {
	return newLimitListener(ln, s.maxConns, s.perClient, func(total bool) {
		which := "stream.max_conns_per_client"
		if total {
			which = "stream.max_conns"
		}
		if s.refusedLogged.CompareAndSwap(false, true) {
			s.log.Warn("connection refused: too many open connections", "limit", which)
			return
		}
		s.log.Debug("connection refused: too many open connections", "limit", which)
	})
}
