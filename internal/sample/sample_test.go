package sample

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The embedded file and the testdata link are the same bytes, and Write
// reproduces them.
func TestWriteMatchesTestdata(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "testdata", Name))
	if err != nil {
		t.Fatalf("read testdata/%s: %v", Name, err)
	}
	if !bytes.Equal(Bytes(), want) || Size() != int64(len(want)) {
		t.Fatalf("embedded sample (%d bytes) differs from testdata/%s (%d bytes)", Size(), Name, len(want))
	}
	p, err := Write(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatalf("Write() error = %v", err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Write() wrote %d bytes, err %v; want %d identical bytes", len(got), err, len(want))
	}
	// The MP4 starts with an ftyp box.
	if !bytes.Equal(got[4:8], []byte("ftyp")) {
		t.Errorf("sample does not start with an ftyp box: % x", got[:8])
	}
}
