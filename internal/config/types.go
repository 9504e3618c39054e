package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Duration is a [time.Duration] that reads and writes itself as text such as
// "30s", "5m" or "1h30m" in TOML.
type Duration time.Duration

// ParseDuration parses a duration with a unit, as [time.ParseDuration] does.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf(`invalid duration %q: want a number with a unit, such as "90s", "5m" or "6h"`, s)
	}
	return Duration(d), nil
}

// Std returns d as a [time.Duration].
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like [time.Duration.String] without trailing zero units:
// "6h", "1m", "1h30m", "1.5s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements [encoding.TextMarshaler].
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ByteSize is a number of bytes. In TOML it is a plain integer or a string with
// a unit: B, kB (or KB), MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB are
// powers of 1024. Units are case-insensitive, a space may separate number and
// unit, and the number may have a fraction ("1.5GiB") as long as the result is
// a whole number of bytes.
type ByteSize int64

// Common sizes.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

// byteUnits lists the units [ByteSize.String] may print, largest first, so
// the first that divides a size gives the shortest exact form.
var byteUnits = []struct {
	name string
	size int64
}{
	{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"kB", 1e3},
}

// unitSizes maps a lowercase unit to its size in bytes.
var unitSizes = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// maxSizeDigits bounds the number part of a size, so parsing stays cheap.
const maxSizeDigits = 40

// ParseByteSize parses a size such as "2GiB", "1.5 MB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	bad := func(why string) (ByteSize, error) {
		return 0, fmt.Errorf(`invalid size %q: %s`, s, why)
	}
	t := strings.TrimSpace(s)
	n := 0
	dot := false
	for n < len(t) && (t[n] >= '0' && t[n] <= '9' || t[n] == '.' && !dot) {
		dot = dot || t[n] == '.'
		n++
	}
	num := t[:n]
	unit := strings.ToLower(strings.TrimLeft(t[n:], " "))
	if num == "" || num[0] == '.' || num[len(num)-1] == '.' {
		return bad(`want a number with an optional unit, such as "512KiB", "2GiB" or "1MB"`)
	}
	if len(num) > maxSizeDigits {
		return bad("number too long")
	}
	mult, ok := unitSizes[unit]
	if !ok {
		return bad("unknown unit; use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB")
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return bad("malformed number")
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return bad("not a whole number of bytes")
	}
	if !r.Num().IsInt64() {
		return bad("too large")
	}
	return ByteSize(r.Num().Int64()), nil
}

// String formats b exactly, with the largest unit that divides it: "2GiB",
// "3TB", "1000001". Negative sizes print as plain integers.
func (b ByteSize) String() string {
	if b > 0 {
		for _, u := range byteUnits {
			if int64(b)%u.size == 0 {
				return strconv.FormatInt(int64(b)/u.size, 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText implements [encoding.TextMarshaler].
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// LogLevel is a [slog.Level] that reads and writes itself as "debug", "info",
// "warn" or "error" (case-insensitive on input).
type LogLevel slog.Level

// Log levels accepted in the config.
const (
	LevelDebug = LogLevel(slog.LevelDebug)
	LevelInfo  = LogLevel(slog.LevelInfo)
	LevelWarn  = LogLevel(slog.LevelWarn)
	LevelError = LogLevel(slog.LevelError)
)

var errBadLevel = errors.New(`want "debug", "info", "warn" or "error"`)

// ParseLogLevel parses "debug", "info", "warn" (or "warning") or "error".
func ParseLogLevel(s string) (LogLevel, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return LevelDebug, nil
	case "info":
		return LevelInfo, nil
	case "warn", "warning":
		return LevelWarn, nil
	case "error":
		return LevelError, nil
	}
	return 0, fmt.Errorf("invalid log level %q: %w", s, errBadLevel)
}

// Level returns l as a [slog.Level].
func (l LogLevel) Level() slog.Level { return slog.Level(l) }

// valid reports whether l is one of the four named levels.
func (l LogLevel) valid() bool {
	switch l {
	case LevelDebug, LevelInfo, LevelWarn, LevelError:
		return true
	}
	return false
}

// String returns the lowercase level name, such as "info".
func (l LogLevel) String() string { return strings.ToLower(slog.Level(l).String()) }

// MarshalText implements [encoding.TextMarshaler].
func (l LogLevel) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler].
func (l *LogLevel) UnmarshalText(b []byte) error {
	v, err := ParseLogLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}
