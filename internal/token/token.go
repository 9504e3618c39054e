package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/torrentclaw/cli/internal/ids"
)

// Length limits of a token, in characters.
const (
	MinLength = ids.MinTokenLength
	MaxLength = ids.MaxTokenLength
)

// ErrUnauthorized is returned by [Table.Verify] for every failure: unknown
// task, missing, wrong, expired, out-of-scope or malformed token, locked
// task. Callers must not be able to tell these cases apart.
var ErrUnauthorized = errors.New("unauthorized")

// ErrInvalid reports a token that is not 32–128 URL-safe characters.
var ErrInvalid = errors.New("token must be 32-128 url-safe characters")

// Token is a secret stream token. It redacts itself when printed or logged.
type Token string

// String returns "REDACTED" so a token never leaks through fmt.
func (Token) String() string { return "REDACTED" }

// GoString returns "REDACTED" so a token never leaks through %#v.
func (Token) GoString() string { return "REDACTED" }

// LogValue implements [slog.LogValuer].
func (Token) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Reveal returns the plain token, for the few places that must put it in a
// URL or a reply to its owner.
func (t Token) Reveal() string { return string(t) }

// Mint returns a new token: 32 bytes from crypto/rand, hex encoded.
func Mint() (Token, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return Token(hex.EncodeToString(b[:])), nil
}

// Valid reports whether s has the shape of a token: 32–128 characters from
// the URL-safe set [A-Za-z0-9._~-]. It is [ids.ValidToken]: one rule for
// every package.
func Valid(s string) bool { return ids.ValidToken(s) }

// Hash returns the SHA-256 of a token, the only form the table keeps.
func Hash(s string) [32]byte { return sha256.Sum256([]byte(s)) }
