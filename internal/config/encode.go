package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"

	"github.com/BurntSushi/toml"
)

// example is the documented example config; see the package doc for how
// config.example.toml at the repository root is kept identical to it.
//
//go:embed example.toml
var example []byte

// Example returns the documented example config file (config.example.toml).
// It sets every key to its default.
func Example() []byte { return slices.Clone(example) }

// Redacted returns a copy of c with secrets replaced by "REDACTED", for
// showing and logging. Empty secrets stay empty, so "not set" stays visible.
func (c Config) Redacted() Config {
	if c.Origin.APIKey != "" {
		c.Origin.APIKey = "REDACTED"
	}
	c.Stream.CORSOrigins = slices.Clone(c.Stream.CORSOrigins)
	c.Torrent.Trackers = slices.Clone(c.Torrent.Trackers)
	return c
}

// Encode writes c to w as TOML that [Load] reads back to an equal Config.
// It writes secrets as they are: call [Config.Redacted] first for display.
func Encode(w io.Writer, c Config) error {
	enc := toml.NewEncoder(w)
	enc.Indent = ""
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return nil
}

// ErrInsecurePermissions is returned by [CheckPermissions] when a config file
// that holds origin.api_key can be read or written by group or others. The CLI
// prints it as a warning, or refuses to start with --strict.
var ErrInsecurePermissions = errors.New("insecure config file permissions")

// CheckPermissions returns an error wrapping [ErrInsecurePermissions] when the
// file at path sets origin.api_key and its mode grants any access to group or
// others. A missing file, a file without a key and a file that does not parse
// (Load reports that) pass. It always passes on Windows, where mode bits say
// nothing about access.
func CheckPermissions(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check config permissions: %w", err)
	}
	mode := fi.Mode().Perm()
	if mode&0o077 == 0 {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("check config permissions: %w", err)
	}
	var probe struct {
		Origin struct {
			APIKey any `toml:"api_key"`
		} `toml:"origin"`
	}
	if _, err := toml.Decode(string(data), &probe); err != nil || probe.Origin.APIKey == nil || probe.Origin.APIKey == "" {
		return nil
	}
	return fmt.Errorf("%w: %s holds origin.api_key and has mode %04o (open to group or others); fix it with: chmod 600 %s",
		ErrInsecurePermissions, path, mode, path)
}
