package sample

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

// Name is the sample's file name.
const Name = "sample.mp4"

// Duration is the sample's length in seconds.
const Duration = 30

//go:embed sample.mp4
var mp4 []byte

// Size returns the sample's length in bytes.
func Size() int64 { return int64(len(mp4)) }

// Bytes returns the sample video. The slice is shared: callers must not
// modify it.
func Bytes() []byte { return mp4 }

// Write writes the sample into dir (created if needed, mode 0700) as
// [Name] and returns its path.
func Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write sample: %w", err)
	}
	p := filepath.Join(dir, Name)
	if err := os.WriteFile(p, mp4, 0o600); err != nil {
		return "", fmt.Errorf("write sample: %w", err)
	}
	return p, nil
}
