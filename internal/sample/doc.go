// Package sample holds the small sample video that `torrentclaw demo` seeds,
// embedded in the binary so the demo works from any directory (for example
// after `go install`). It imports nothing internal; cli imports it, and tests
// of any package may read it.
//
// testdata/sample.mp4 at the repository root is a symbolic link to the file
// embedded here, for tests that open it by path; testdata/README.md says how
// the video was made.
package sample
