package ids

import (
	"encoding/base32"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

// The reference rules, as DESIGN.md states them.
var (
	taskIDRe    = regexp.MustCompile(`^[A-Za-z0-9._~:-]{1,128}$`)
	sessionIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	tokenRe     = regexp.MustCompile(`^[A-Za-z0-9._~-]{32,128}$`)
	hex40Re     = regexp.MustCompile(`^[0-9A-Fa-f]{40}$`)
	hex64Re     = regexp.MustCompile(`^[0-9A-Fa-f]{64}$`)
	base32Re    = regexp.MustCompile(`^[A-Za-z2-7]{32}$`)
)

var idCases = []struct {
	name          string
	in            string
	task, session bool
}{
	{"empty", "", false, false},
	{"uuid", "3f2b8c1e-4a5d-4e6f-9a0b-1c2d3e4f5a6b", true, true},
	{"origin style", "task_01HZX:part.2~a", true, false},
	{"space", "my task", false, false},
	{"slash", "a/b", false, false},
	{"dotdot", "..", true, false},
	{"percent", "a%20b", false, false},
	{"nul", "a\x00", false, false},
	{"unicode", "tâche", false, false},
	{"max", strings.Repeat("a", 128), true, true},
	{"too long", strings.Repeat("a", 129), false, false},
	{"query chars", "a&t=b", false, false},
	{"newline", "a\n", false, false},
}

func TestValidIDs(t *testing.T) {
	for _, tc := range idCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidTaskID(tc.in); got != tc.task {
				t.Errorf("ValidTaskID(%q) = %v, want %v", tc.in, got, tc.task)
			}
			if got := ValidSessionID(tc.in); got != tc.session {
				t.Errorf("ValidSessionID(%q) = %v, want %v", tc.in, got, tc.session)
			}
		})
	}
}

var tokenCases = []struct {
	name string
	in   string
	want bool
}{
	{"empty", "", false},
	{"short", strings.Repeat("a", 31), false},
	{"min", strings.Repeat("a", 32), true},
	{"max", strings.Repeat("Z", 128), true},
	{"long", strings.Repeat("a", 129), false},
	{"urlsafe", strings.Repeat("aZ09-_.~", 4), true},
	{"space", strings.Repeat("a", 31) + " ", false},
	{"colon", strings.Repeat("a", 31) + ":", false},
	{"percent", strings.Repeat("a", 31) + "%", false},
	{"unicode", strings.Repeat("a", 30) + "é", false},
}

func TestValidToken(t *testing.T) {
	for _, tc := range tokenCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidToken(tc.in); got != tc.want {
				t.Errorf("ValidToken(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

const v1 = "c9e15763f722f23e98a29decdfae341b98d53056"

var hashCases = []struct {
	name string
	in   string
	want string // "" = refused
}{
	{"v1 hex", v1, v1},
	{"v1 hex upper", strings.ToUpper(v1), v1},
	{"v1 base32", "ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW", v1},
	{"v1 base32 lower", "zhqvoy7xelzd5gfctxwn7lrudomnkmcw", v1},
	{"v2 hex", strings.Repeat("ab", 32), strings.Repeat("ab", 32)},
	{"zero v1", strings.Repeat("0", 40), ""},
	{"zero v2", strings.Repeat("0", 64), ""},
	{"zero base32", strings.Repeat("A", 32), ""},
	{"39 hex", v1[:39], ""},
	{"41 hex", v1 + "a", ""},
	{"non hex", "g" + v1[1:], ""},
	{"base32 with 1", "1HQVOY7XELZD5GFCTXWN7LRUDOMNKMCW", ""},
	{"empty", "", ""},
	{"magnet", "magnet:?xt=urn:btih:" + v1, ""},
}

func TestParseInfoHash(t *testing.T) {
	for _, tc := range hashCases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseInfoHash(tc.in)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("ParseInfoHash(%q) = %q, %v, want %q", tc.in, got, ok, tc.want)
			}
		})
	}
}

func FuzzValidIDs(f *testing.F) {
	for _, tc := range idCases {
		f.Add(tc.in)
	}
	for _, tc := range tokenCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidTaskID(s), taskIDRe.MatchString(s); got != want {
			t.Errorf("ValidTaskID(%q) = %v, regexp says %v", s, got, want)
		}
		if got, want := ValidSessionID(s), sessionIDRe.MatchString(s); got != want {
			t.Errorf("ValidSessionID(%q) = %v, regexp says %v", s, got, want)
		}
		if got, want := ValidToken(s), tokenRe.MatchString(s); got != want {
			t.Errorf("ValidToken(%q) = %v, regexp says %v", s, got, want)
		}
	})
}

func FuzzParseInfoHash(f *testing.F) {
	for _, tc := range hashCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseInfoHash(s)
		// Reference: decode by shape with the standard library.
		var ref []byte
		switch {
		case hex40Re.MatchString(s), hex64Re.MatchString(s):
			ref, _ = hex.DecodeString(s)
		case base32Re.MatchString(s):
			ref, _ = base32.StdEncoding.DecodeString(strings.ToUpper(s))
		}
		if strings.Trim(hex.EncodeToString(ref), "0") == "" {
			ref = nil
		}
		if want := hex.EncodeToString(ref); got != want || ok != (ref != nil) {
			t.Fatalf("ParseInfoHash(%q) = %q, %v; reference %q", s, got, ok, want)
		}
		if ok {
			again, ok2 := ParseInfoHash(got)
			if !ok2 || again != got {
				t.Errorf("ParseInfoHash(%q) = %q, %v; want it to round-trip", got, again, ok2)
			}
		}
	})
}
