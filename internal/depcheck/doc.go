// Package depcheck holds only a test: it runs `go list -json ./...` and fails
// on any import that the table in STYLE.md does not allow, so the layering
// (imports only point down) and the third-party boundaries cannot erode.
//
// Nothing imports it.
package depcheck
