package cli

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
)

type versionOptions struct {
	Out     io.Writer
	Version string

	JSON bool
}

func newVersionCmd(env *Env, runF func(*versionOptions) error) *cobra.Command {
	opts := &versionOptions{Out: env.Out, Version: env.Version}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runVersion(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"version","go","os","arch"}`)
	return cmd
}

// versionJSON is version's --json output.
type versionJSON struct {
	Version string `json:"version"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func runVersion(opts *versionOptions) error {
	v := versionJSON{Version: opts.Version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if opts.JSON {
		return writeJSON(opts.Out, v)
	}
	_, err := fmt.Fprintf(opts.Out, "torrentclaw %s (%s %s/%s)\n", v.Version, v.Go, v.OS, v.Arch)
	return err
}
