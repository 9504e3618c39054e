package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completionTimeout bounds the control-socket call behind a completion: a
// shell must not hang on a stuck daemon.
const completionTimeout = time.Second

// addCompletions wires dynamic shell completion into the tree: every command
// whose argument is a <taskID> offers the running daemon's task IDs (none,
// at once, when no daemon runs), and flags with a fixed set of values offer
// them. cobra's own "completion" command prints the shell scripts.
func addCompletions(root *cobra.Command, env *Env) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if strings.Contains(c.Use, "<taskID>") && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = completeTaskIDs(env)
		}
		if f := c.Flags().Lookup("log-level"); f != nil {
			_ = c.RegisterFlagCompletionFunc("log-level",
				cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeTaskIDs offers task IDs (with their names as descriptions) from
// the running daemon's control socket.
func completeTaskIDs(env *Env) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, completionTimeout)
		defer cancel()
		client, err := env.Client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer client.Close()
		st, err := client.Status(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, t := range st.Tasks {
			if !strings.HasPrefix(t.ID, toComplete) {
				continue
			}
			name := strings.Map(func(r rune) rune {
				if r == '\t' || r == '\n' || r == '\r' {
					return ' '
				}
				return r
			}, taskName(t))
			out = append(out, t.ID+"\t"+truncate(name, 60))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
