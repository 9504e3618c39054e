package ids

import (
	"encoding/base32"
	"encoding/hex"
	"strings"
)

// Lengths of the identifiers, in bytes (all are ASCII).
const (
	MaxTaskIDLength    = 128
	MaxSessionIDLength = 128
	MinTokenLength     = 32
	MaxTokenLength     = 128
)

// ValidTaskID reports whether s is a task ID: 1–128 characters of
// [A-Za-z0-9._~:-].
func ValidTaskID(s string) bool {
	return validSet(s, 1, MaxTaskIDLength, func(c byte) bool { return alnum(c) || c == '.' || c == '_' || c == '~' || c == ':' || c == '-' })
}

// ValidSessionID reports whether s is an HLS session ID: 1–128 characters
// of [A-Za-z0-9_-]. IDs the daemon issues are UUID v4.
func ValidSessionID(s string) bool {
	return validSet(s, 1, MaxSessionIDLength, func(c byte) bool { return alnum(c) || c == '_' || c == '-' })
}

// ValidToken reports whether s has the shape of a stream token: 32–128
// URL-safe characters, [A-Za-z0-9._~-].
func ValidToken(s string) bool {
	return validSet(s, MinTokenLength, MaxTokenLength, func(c byte) bool { return alnum(c) || c == '.' || c == '_' || c == '~' || c == '-' })
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func validSet(s string, minLen, maxLen int, ok func(byte) bool) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// ParseInfoHash parses a bare info hash: BitTorrent v1 as 40 hex or 32
// base32 characters (RFC 4648, any case, no padding), or v2 as 64 hex
// characters. It returns lowercase hex (40 characters for v1, 64 for v2).
// An all-zero hash is refused: no torrent has it, and it is a common
// placeholder.
func ParseInfoHash(s string) (string, bool) {
	if h, ok := ParseInfoHashV1(s); ok {
		return h, true
	}
	return ParseInfoHashV2(s)
}

// ParseInfoHashV1 parses a v1 info hash (40 hex or 32 base32 characters)
// and returns it as 40 lowercase hex characters.
func ParseInfoHashV1(s string) (string, bool) {
	if h, ok := parseHex(s, 20); ok {
		return h, true
	}
	return parseBase32(s)
}

// ParseInfoHashV2 parses a v2 info hash (64 hex characters) and returns it
// lowercased.
func ParseInfoHashV2(s string) (string, bool) { return parseHex(s, 32) }

func parseHex(s string, n int) (string, bool) {
	if len(s) != 2*n {
		return "", false
	}
	b, err := hex.DecodeString(s)
	if err != nil || allZero(b) {
		return "", false
	}
	return hex.EncodeToString(b), true
}

func parseBase32(s string) (string, bool) {
	if len(s) != 32 {
		return "", false
	}
	up := strings.ToUpper(s)
	for i := 0; i < len(up); i++ {
		if c := up[i]; (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return "", false
		}
	}
	b, err := base32.StdEncoding.DecodeString(up)
	if err != nil || len(b) != 20 || allZero(b) {
		return "", false
	}
	return hex.EncodeToString(b), true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
