package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

var byteSizeCases = []struct {
	in   string
	want ByteSize
	err  string // "" = ok
	out  string // String() of want
}{
	{"0", 0, "", "0"},
	{"1", 1, "", "1"},
	{"1048576", MiB, "", "1MiB"},
	{"2GiB", 2 * GiB, "", "2GiB"},
	{"2 GiB", 2 * GiB, "", "2GiB"},
	{"  512kib ", 512 * KiB, "", "512KiB"},
	{"1MB", 1_000_000, "", "1MB"},
	{"1kB", 1000, "", "1kB"},
	{"1KB", 1000, "", "1kB"},
	{"3TB", 3_000_000_000_000, "", "3TB"},
	{"1TiB", TiB, "", "1TiB"},
	{"1.5GiB", 3 * GiB / 2, "", "1536MiB"},
	{"1.5MB", 1_500_000, "", "1500kB"},
	{"100B", 100, "", "100"},
	{"1001", 1001, "", "1001"},
	{"0.5KiB", 512, "", "512"},
	{"8796093022207TiB", 0, "too large", ""},
	{"9223372036854775807", 1<<63 - 1, "", "9223372036854775807"},
	{"9223372036854775808", 0, "too large", ""},
	{"", 0, "want a number", ""},
	{"GiB", 0, "want a number", ""},
	{"-1", 0, "want a number", ""},
	{".5MB", 0, "want a number", ""},
	{"1.MB", 0, "want a number", ""},
	{"1.5B", 0, "whole number", ""},
	{"1e3", 0, "unknown unit", ""},
	{"0x10", 0, "unknown unit", ""},
	{"1 gigabyte", 0, "unknown unit", ""},
	{"1/2", 0, "unknown unit", ""},
	{"1.2.3", 0, "unknown unit", ""},
	{strings.Repeat("1", 41), 0, "too long", ""},
}

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	for _, tc := range byteSizeCases {
		got, err := ParseByteSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseByteSize(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.out {
			t.Errorf("ByteSize(%d).String() = %q, want %q", got, s, tc.out)
		}
	}
}

var durationCases = []struct {
	in   string
	want time.Duration
	ok   bool
	out  string
}{
	{"30s", 30 * time.Second, true, "30s"},
	{"60s", time.Minute, true, "1m"},
	{"6h", 6 * time.Hour, true, "6h"},
	{"1h30m", 90 * time.Minute, true, "1h30m"},
	{"2h0m5s", 2*time.Hour + 5*time.Second, true, "2h0m5s"},
	{"1.5s", 1500 * time.Millisecond, true, "1.5s"},
	{"250ms", 250 * time.Millisecond, true, "250ms"},
	{"0s", 0, true, "0s"},
	{"0", 0, true, "0s"},
	{"-1h", -time.Hour, true, "-1h"},
	{" 5m ", 5 * time.Minute, true, "5m"},
	{"30", 0, false, ""},
	{"", 0, false, ""},
	{"1 hour", 0, false, ""},
	{"1d", 0, false, ""},
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range durationCases {
		got, err := ParseDuration(tc.in)
		if !tc.ok {
			if err == nil {
				t.Errorf("ParseDuration(%q) = %v, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got.Std() != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got.Std(), err, tc.want)
			continue
		}
		if s := got.String(); s != tc.out {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.want, s, tc.out)
		}
	}
}

func TestParseLogLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want slog.Level
		ok   bool
	}{
		{"debug", slog.LevelDebug, true},
		{"INFO", slog.LevelInfo, true},
		{"Warn", slog.LevelWarn, true},
		{"warning", slog.LevelWarn, true},
		{"error", slog.LevelError, true},
		{"trace", 0, false},
		{"", 0, false},
		{"info+2", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseLogLevel(tc.in)
		if (err == nil) != tc.ok || tc.ok && got.Level() != tc.want {
			t.Errorf("ParseLogLevel(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for _, l := range []LogLevel{LevelDebug, LevelInfo, LevelWarn, LevelError} {
		text, _ := l.MarshalText()
		var back LogLevel
		if err := back.UnmarshalText(text); err != nil || back != l {
			t.Errorf("LogLevel round trip %v -> %q -> %v, %v", l, text, back, err)
		}
	}
}
