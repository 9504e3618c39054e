package engine

import (
	"fmt"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/mse"
)

// Protocol encryption (BitTorrent's message stream encryption: a Diffie-Hellman handshake,
// then RC4 or plaintext) hides BitTorrent from traffic shaping; it is not privacy. It costs
// CPU on both sides of an RC4 connection, and qBittorrent, when it negotiates encryption,
// allows only RC4 (libtorrent's allowed_enc_level set to RC4 by qBittorrent's session
// setup), so every byte is encrypted. The torrent library's default dials encrypted
// first: from one unlimited qBittorrent on loopback that ran at half the rate of a plain
// connection, with RC4 a quarter of the engine's CPU (docs/benchmarks.md). So by default the
// engine dials plain first and encrypted when a peer refuses that. A peer that dials us
// encrypted is answered in kind.
type encryption int

const (
	encryptionPlaintextFirst encryption = iota
	encryptionPrefer
	encryptionRequire
)

// parseEncryption reads the torrent.encryption value ("" is the default).
func parseEncryption(s string) (encryption, error) {
	switch s {
	case "", "plaintext-first":
		return encryptionPlaintextFirst, nil
	case "prefer":
		return encryptionPrefer, nil
	case "require":
		return encryptionRequire, nil
	}
	return 0, fmt.Errorf(`engine: encryption %q: want "plaintext-first", "prefer" or "require"`, s)
}

// setEncryption applies the policy to the torrent library's config.
func setEncryption(cfg *torrent.ClientConfig, e encryption) {
	switch e {
	case encryptionPlaintextFirst:
		// The other kind is tried when the first handshake fails.
		cfg.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{Preferred: false}
		cfg.CryptoProvides = mse.AllSupportedCrypto
		cfg.CryptoSelector = mse.DefaultCryptoSelector // plaintext when the peer offers it
	case encryptionPrefer:
		cfg.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{Preferred: true}
		cfg.CryptoProvides = mse.AllSupportedCrypto
		cfg.CryptoSelector = mse.DefaultCryptoSelector
	case encryptionRequire:
		cfg.HeaderObfuscationPolicy = torrent.HeaderObfuscationPolicy{Preferred: true, RequirePreferred: true}
		cfg.CryptoProvides = mse.CryptoMethodRC4
		cfg.CryptoSelector = func(provided mse.CryptoMethod) mse.CryptoMethod { return mse.CryptoMethodRC4 }
	}
}
