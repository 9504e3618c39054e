package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/torrentclaw/cli/internal/control"
)

func newTokenCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue or revoke a task's stream token",
		Long: `Every stream URL carries its task's token. "token issue" mints a new one
(the old one keeps working for stream.token_grace, so a playing video
survives); "token revoke" makes every URL of the task stop working at once,
and the task stays locked until a new token is issued.`,
		Args: subcommandArgs,
		RunE: showHelp,
	}
	cmd.AddCommand(newTokenIssueCmd(env, nil), newTokenRevokeCmd(env, nil))
	return cmd
}

type tokenIssueOptions struct {
	Out    io.Writer
	Client func() (*control.Client, error)

	TaskID string
	JSON   bool
}

func newTokenIssueCmd(env *Env, runF func(*tokenIssueOptions) error) *cobra.Command {
	opts := &tokenIssueOptions{Out: env.Out, Client: env.Client}
	cmd := &cobra.Command{
		Use:   "issue <taskID>",
		Short: "Mint a new stream token for a task and print it with the task's URLs",
		Args:  exactArgs(1, "one task ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.TaskID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runTokenIssue(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, `print {"taskId","token","expiresAt","streamUrl","playlistUrl"}`)
	return cmd
}

// tokenJSON is token issue's --json output.
type tokenJSON struct {
	TaskID      string    `json:"taskId"`
	Token       string    `json:"token"`
	ExpiresAt   time.Time `json:"expiresAt"`
	StreamURL   string    `json:"streamUrl"`
	PlaylistURL string    `json:"playlistUrl"`
}

func runTokenIssue(ctx context.Context, opts *tokenIssueOptions) error {
	client, err := runningClient(ctx, opts.Client)
	if err != nil {
		return err
	}
	defer client.Close()
	resp, err := client.IssueToken(ctx, opts.TaskID)
	if err != nil {
		return fmt.Errorf("issue token: %w", err)
	}
	if opts.JSON {
		return writeJSON(opts.Out, tokenJSON{
			TaskID:      resp.TaskID,
			Token:       resp.Token.Reveal(),
			ExpiresAt:   resp.ExpiresAt,
			StreamURL:   resp.StreamURL,
			PlaylistURL: resp.PlaylistURL,
		})
	}
	_, err = fmt.Fprintf(opts.Out, "token     %s\nexpires   %s\nstream    %s\nplaylist  %s\n",
		resp.Token.Reveal(), formatTime(resp.ExpiresAt), resp.StreamURL, resp.PlaylistURL)
	return err
}

type tokenRevokeOptions struct {
	Err    io.Writer
	Client func() (*control.Client, error)

	TaskID string
}

func newTokenRevokeCmd(env *Env, runF func(*tokenRevokeOptions) error) *cobra.Command {
	opts := &tokenRevokeOptions{Err: env.Err, Client: env.Client}
	cmd := &cobra.Command{
		Use:   "revoke <taskID>",
		Short: "Revoke a task's stream token: its URLs stop working at once",
		Args:  exactArgs(1, "one task ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.TaskID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runTokenRevoke(cmd.Context(), opts)
		},
	}
	return cmd
}

func runTokenRevoke(ctx context.Context, opts *tokenRevokeOptions) error {
	client, err := runningClient(ctx, opts.Client)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.RevokeToken(ctx, opts.TaskID); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	// The daemon keeps the task locked (it does not fall back to serving
	// it token-less) until a new token is issued.
	_, err = fmt.Fprintf(opts.Err, "revoked: the URLs of task %s stop working now; new ones: torrentclaw token issue %s\n", opts.TaskID, opts.TaskID)
	return err
}
