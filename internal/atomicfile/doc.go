// Package atomicfile writes files so that a crash or a full disk leaves
// either the old file or the complete new one, never half of one: the data
// goes to a temporary file in the same directory, is synced, gets its mode,
// and is renamed over the target.
//
// It imports only the standard library and nothing internal; every package
// may import it.
package atomicfile
