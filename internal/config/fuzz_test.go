package config

import (
	"bytes"
	"os"
	"reflect"
	"testing"
)

// FuzzLoad feeds arbitrary files to the loader: it must not panic, and a
// config that loads must encode to TOML that loads back equal.
func FuzzLoad(f *testing.F) {
	f.Add(Example())
	for _, name := range []string{"full.toml", "invalid.toml"} {
		data, err := os.ReadFile("../../testdata/config/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "foo = 1\n", "[stream]\nport = 70000\n", "[stream.x]\ny = 1\n", "a.b.c.d.e.f = 1\n",
		"stream = { port = 5 }\n", "[[log]]\n", "[hls]\nmax_disk = \"1.5GiB\"\n",
		"[torrent]\nseed_ratio = nan\n", "[torrent]\nseed_ratio = -0.0\n",
		"[origin]\nname = \"\\u0000\"\n", "[stream]\ncors_origins = []\n",
		"[torrent]\ndata_dir = \"~\"\n", "[log]\nlevel = \"WARNING\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := load("fuzz.toml", data, noEnv)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := Encode(&buf, c); err != nil {
			t.Fatalf("Encode(loaded config) = %v", err)
		}
		c2, err := load("fuzz.toml", buf.Bytes(), noEnv)
		if err != nil {
			t.Fatalf("load(Encode(c)) = %v\ninput:\n%s\nencoded:\n%s", err, data, buf.Bytes())
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("load(Encode(c)) = %+v\nwant %+v\nencoded:\n%s", c2, c, buf.Bytes())
		}
	})
}

// FuzzByteSize checks that a size that parses prints to text that parses to
// the same size, in canonical form.
func FuzzByteSize(f *testing.F) {
	for _, tc := range byteSizeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, negative", s, b)
		}
		text, err := b.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back ByteSize
		if err := back.UnmarshalText(text); err != nil || back != b {
			t.Fatalf("ParseByteSize(%q) = %d; %q parses to %d, %v", s, b, text, back, err)
		}
		if again := back.String(); again != string(text) {
			t.Fatalf("ByteSize(%d) prints %q then %q", b, text, again)
		}
	})
}

// FuzzDuration checks the same round trip for durations.
func FuzzDuration(f *testing.F) {
	for _, tc := range durationCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		text, err := d.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := back.UnmarshalText(text); err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v; %q parses to %v, %v", s, d.Std(), text, back.Std(), err)
		}
	})
}
