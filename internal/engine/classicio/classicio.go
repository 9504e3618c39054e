package classicio

import "os"

// EnvVar is the library's environment variable for its default file I/O.
const EnvVar = "TORRENT_STORAGE_DEFAULT_FILE_IO"

// Set reports whether this package set EnvVar (false when the user had).
var Set = set()

func set() bool {
	if _, ok := os.LookupEnv(EnvVar); ok {
		return false
	}
	return os.Setenv(EnvVar, "classic") == nil
}
