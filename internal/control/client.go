package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Client limits.
const (
	// requestTimeout bounds every call but Seed, which hashes the whole
	// content and may take minutes; callers bound that one with ctx.
	requestTimeout    = 30 * time.Second
	maxReplyBytes     = 16 << 20
	maxErrorBodyBytes = 64 << 10
)

// Client talks to a daemon over its control socket. It implements [Backend].
// It is safe for concurrent use; Close releases idle connections.
type Client struct {
	socketPath string
	transport  *http.Transport
	http       *http.Client
	ownerKey   string // sent as OwnerHeader when set
}

var _ Backend = (*Client)(nil)

// NewClient returns a client for the socket at socketPath. It does not
// connect; the first call does.
func NewClient(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns:       4,
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
		// Proxy stays nil: the socket is local, whatever HTTP_PROXY says.
	}
	return &Client{socketPath: socketPath, transport: tr, http: &http.Client{Transport: tr}}
}

// WithOwnerKey returns a client that proves it owns an in-process daemon
// (see [Options.OwnerKey]). It shares c's connections.
func (c *Client) WithOwnerKey(key string) *Client {
	cc := *c
	cc.ownerKey = key
	return &cc
}

// Hello pings the daemon and returns what it says about itself.
func (c *Client) Hello(ctx context.Context) (PingResponse, error) {
	var resp PingResponse
	err := c.do(ctx, http.MethodGet, "/v1/ping", nil, &resp)
	return resp, err
}

// PauseTask implements [Backend].
func (c *Client) PauseTask(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, taskPath(id, "/pause"), nil, nil)
}

// ResumeTask implements [Backend].
func (c *Client) ResumeTask(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, taskPath(id, "/resume"), nil, nil)
}

// SocketPath returns the socket the client talks to.
func (c *Client) SocketPath() string { return c.socketPath }

// Close closes idle connections. The client stays usable.
func (c *Client) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}

// Ping checks that a daemon answers. It returns an error wrapping
// [ErrNotRunning] when none does.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v1/ping", nil, nil)
}

// Status implements [Backend].
func (c *Client) Status(ctx context.Context) (StatusResponse, error) {
	var st StatusResponse
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// AddTask implements [Backend].
func (c *Client) AddTask(ctx context.Context, req AddRequest) (AddResponse, error) {
	var resp AddResponse
	err := c.do(ctx, http.MethodPost, "/v1/tasks", req, &resp)
	return resp, err
}

// Task implements [Backend].
func (c *Client) Task(ctx context.Context, id string) (TaskInfo, error) {
	var info TaskInfo
	err := c.do(ctx, http.MethodGet, taskPath(id, ""), nil, &info)
	return info, err
}

// RemoveTask implements [Backend].
func (c *Client) RemoveTask(ctx context.Context, id string, deleteFiles bool) error {
	p := taskPath(id, "")
	if deleteFiles {
		p += "?deleteFiles=true"
	}
	return c.do(ctx, http.MethodDelete, p, nil, nil)
}

// IssueToken implements [Backend].
func (c *Client) IssueToken(ctx context.Context, id string) (TokenResponse, error) {
	var resp TokenResponse
	err := c.do(ctx, http.MethodPost, taskPath(id, "/token"), nil, &resp)
	return resp, err
}

// RevokeToken implements [Backend].
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, taskPath(id, "/token"), nil, nil)
}

// CreateHLS implements [Backend].
func (c *Client) CreateHLS(ctx context.Context, id string, fileIndex int) (HLSResponse, error) {
	var resp HLSResponse
	err := c.do(ctx, http.MethodPost, taskPath(id, "/hls"), HLSRequest{FileIndex: fileIndex}, &resp)
	return resp, err
}

// Seed implements [Backend]. path must be absolute: the daemon may run in
// another directory.
func (c *Client) Seed(ctx context.Context, path string) (SeedResponse, error) {
	var resp SeedResponse
	err := c.do(ctx, http.MethodPost, "/v1/seed", SeedRequest{Path: path}, &resp)
	return resp, err
}

// Doctor implements [Backend].
func (c *Client) Doctor(ctx context.Context) ([]Check, error) {
	var resp DoctorResponse
	err := c.do(ctx, http.MethodGet, "/v1/doctor", nil, &resp)
	return resp.Checks, err
}

func taskPath(id, suffix string) string {
	return "/v1/tasks/" + url.PathEscape(id) + suffix
}

// do sends one request and decodes the reply into out (when non-nil).
// Errors are one line: the daemon's message, [ErrNotRunning], or what went
// wrong with the socket.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if path != "/v1/seed" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("control: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	// The host is never resolved: the transport always dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://torrentclaw"+path, body)
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.ownerKey != "" {
		req.Header.Set(OwnerHeader, c.ownerKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()

	if resp.StatusCode >= http.StatusMultipleChoices {
		return replyError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBodyBytes)) // for connection reuse
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxReplyBytes)).Decode(out); err != nil {
		return fmt.Errorf("control: decode reply to %s %s: %w", method, path, err)
	}
	return nil
}

// transportError turns a failed round trip into one line.
func (c *Client) transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the method and the made-up URL
	}
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (nothing answers on %s)", ErrNotRunning, c.socketPath)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("control socket %s: permission denied (is the daemon run by another user?)", c.socketPath)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("control socket %s: daemon did not answer in time: %w", c.socketPath, err)
	}
	return fmt.Errorf("control socket %s: %w", c.socketPath, err)
}

// replyError reads an error reply into an [*Error].
func replyError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
		eb.Error = strings.Join(strings.Fields(string(b)), " ")
		if eb.Error == "" {
			eb.Error = http.StatusText(resp.StatusCode)
		}
	}
	return &Error{StatusCode: resp.StatusCode, Code: eb.Code, Message: eb.Error}
}
