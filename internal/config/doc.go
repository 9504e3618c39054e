// Package config owns the daemon's TOML configuration: the schema ([Config]),
// its defaults ([Default]), strict loading ([Load]), validation
// ([Config.Validate]), the config file location ([Path]), the file permission
// check ([CheckPermissions]), encoding for `config show` ([Encode]) and the
// documented example ([Example]).
//
// It must not import any other internal package, and no component imports it:
// components take their own Options, and package daemon translates a Config
// into them. Only cli and daemon may import config. BurntSushi/toml is used
// here and nowhere else.
//
// The canonical example file is example.toml in this directory, embedded into
// the binary. config.example.toml at the repository root is a byte-identical
// copy kept for readers; a test fails when the two drift (fix it with
// `cp internal/config/example.toml config.example.toml`), and another test
// fails when example.toml does not load to exactly [Default].
package config
