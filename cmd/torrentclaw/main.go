// Command torrentclaw streams torrents to browsers and VLC while they
// download. All of it lives in internal/cli; main only hands over the
// process's arguments and streams and exits with the code it gets back.
package main

import (
	"os"

	"github.com/torrentclaw/cli/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
