package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/control"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and returns
// the file paths and a pool that trusts it.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "torrentclaw test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

func TestHTTPSListener(t *testing.T) {
	f := newFakeOrigin(t, testAPIKey)
	tok, sum := seededOriginTask(t, f, "t1", 1<<20, 11)
	cfg := testConfig(t, t.TempDir())
	cfg.Origin.APIURL = f.URL()
	cfg.Origin.APIKey = testAPIKey
	cfg.Stream.TLSPort = freePort(t)
	certFile, keyFile, pool := writeSelfSigned(t, t.TempDir())
	cfg.Stream.TLSCertFile, cfg.Stream.TLSKeyFile = certFile, keyFile
	r := startDaemon(t, cfg, nil)

	eventually(t, 10*time.Second, "register", func() bool { return len(f.callsNamed("register")) > 0 })
	if got, _ := f.callsNamed("register")[0].Body["httpsStreamPort"].(float64); int(got) != cfg.Stream.TLSPort {
		t.Errorf("register httpsStreamPort = %v, want %d", got, cfg.Stream.TLSPort)
	}
	httpsURL := reportedURLs(t, f, "t1", func(u map[string]string) bool {
		return strings.HasPrefix(u["lanHttps"], "https://") && strings.Contains(u["lanHttps"], tok)
	})["lanHttps"]
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:    pool,
		MinVersion: tls.VersionTLS12,
	}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(httpsURL)
	if err != nil {
		t.Fatalf("GET over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || sha(body) != sum {
		t.Fatalf("GET over TLS = %d, identical=%v", resp.StatusCode, sha(body) == sum)
	}
	checks, err := r.client.Doctor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var tlsCheck *control.Check
	for i := range checks {
		if checks[i].Name == "tls certificate" {
			tlsCheck = &checks[i]
		}
	}
	if tlsCheck == nil || !tlsCheck.OK || !strings.Contains(tlsCheck.Detail, "valid until") {
		t.Errorf("doctor tls check = %+v, want valid with expiry", tlsCheck)
	}
}

func TestHTTPSBadCertFails(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Stream.TLSPort = freePort(t)
	dir := t.TempDir()
	cfg.Stream.TLSCertFile = filepath.Join(dir, "cert.pem")
	cfg.Stream.TLSKeyFile = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cfg.Stream.TLSCertFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Stream.TLSKeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "cert.pem") {
		t.Fatalf("Run() with a bad certificate = %v, want an error naming the file", err)
	}
}
