package media

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often, at most, a handshake looks at the
// certificate files for a change (two stat calls).
const certCheckInterval = 2 * time.Second

// CertInfo reports the TLS certificate ServeTLS serves (or would serve): its
// expiry and the names (DNS and IP SANs, else the subject CN) it is valid
// for. It returns ErrNoTLS when no certificate is configured and the load
// error when the files are bad.
func (s *Server) CertInfo() (notAfter time.Time, names []string, err error) {
	if s.certs == nil {
		return time.Time{}, nil, ErrNoTLS
	}
	cert, err := s.certs.current()
	if err != nil {
		return time.Time{}, nil, err
	}
	leaf := cert.Leaf
	names = append(names, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && leaf.Subject.CommonName != "" {
		names = append(names, leaf.Subject.CommonName)
	}
	return leaf.NotAfter, names, nil
}

// certReloader serves a certificate from a pair of PEM files and picks up
// replacements (renewal by certbot, a new self-signed pair) without a
// restart.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	interval          time.Duration // minimum time between checks of the files

	// mu guards the fields below.
	mu      sync.Mutex
	cert    *tls.Certificate // last good certificate; nil before the first load
	stamp   filesStamp       // the files cert was loaded from
	bad     filesStamp       // last files that failed to load, warned about once
	badSet  bool             // bad is meaningful
	checked time.Time        // last time the files were looked at
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) *certReloader {
	return &certReloader{certFile: certFile, keyFile: keyFile, log: log, interval: certCheckInterval}
}

// filesStamp identifies a version of the two files.
type filesStamp struct {
	cert, key os.FileInfo
}

func (a filesStamp) same(b filesStamp) bool {
	return sameFile(a.cert, b.cert) && sameFile(a.key, b.key)
}

func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

func (c *certReloader) statFiles() (filesStamp, error) {
	cs, err := os.Stat(c.certFile)
	if err != nil {
		return filesStamp{}, fmt.Errorf("tls certificate: %w", err)
	}
	ks, err := os.Stat(c.keyFile)
	if err != nil {
		return filesStamp{}, fmt.Errorf("tls key: %w", err)
	}
	return filesStamp{cert: cs, key: ks}, nil
}

// readPair loads and checks the key pair.
func (c *certReloader) readPair() (*tls.Certificate, filesStamp, error) {
	st, err := c.statFiles()
	if err != nil {
		return nil, filesStamp{}, err
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, st, fmt.Errorf("load tls key pair %s, %s: %w", c.certFile, c.keyFile, err)
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, st, fmt.Errorf("parse tls certificate %s: %w", c.certFile, err)
		}
		cert.Leaf = leaf
	}
	return &cert, st, nil
}

// load (re)loads the files now and fails if they are bad.
func (c *certReloader) load() error {
	cert, st, err := c.readPair()
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cert, c.stamp, c.badSet, c.checked = cert, st, false, time.Now()
	c.warnExpiry(cert)
	return nil
}

// current returns the certificate to serve, reloading the files when they
// changed and the check interval has passed.
func (c *certReloader) current() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.cert != nil && now.Sub(c.checked) < c.interval {
		return c.cert, nil
	}
	c.checked = now
	st, err := c.statFiles()
	if err == nil && c.cert != nil && st.same(c.stamp) {
		return c.cert, nil
	}
	if err == nil && c.cert != nil && c.badSet && st.same(c.bad) {
		return c.cert, nil // already warned about these files
	}
	cert, st, err := c.readPair()
	if err != nil {
		if c.cert == nil {
			return nil, err
		}
		if !c.badSet || !st.same(c.bad) {
			c.log.Warn("tls certificate reload failed, keeping the previous one", "err", err)
			c.bad, c.badSet = st, true
		}
		return c.cert, nil
	}
	c.cert, c.stamp, c.badSet = cert, st, false
	c.log.Info("tls certificate reloaded", "file", c.certFile, "not_after", cert.Leaf.NotAfter)
	c.warnExpiry(cert)
	return cert, nil
}

func (c *certReloader) warnExpiry(cert *tls.Certificate) {
	if time.Now().After(cert.Leaf.NotAfter) {
		c.log.Warn("tls certificate has expired", "file", c.certFile, "not_after", cert.Leaf.NotAfter)
	}
}

func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.current()
}
