package origin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/torrentclaw/cli/internal/netaddr"
)

// APIPath is the path prefix of every origin call.
const APIPath = "/api/internal/agent/"

// Defaults for [Options].
const (
	DefaultCallTimeout = 30 * time.Second
	// MaxBodyBytes caps every response body the client reads (SSE streams
	// are capped per line and per event instead).
	MaxBodyBytes = 1 << 20
)

// ErrRevoked means the origin refused the API key (401, 403 or 410): it was
// revoked or never valid. Errors for such answers match it with [errors.Is].
var ErrRevoked = errors.New("origin rejected the api key")

// ErrBodyTooLarge means a response body exceeded [MaxBodyBytes].
var ErrBodyTooLarge = errors.New("response body too large")

// StatusError is a non-2xx answer from the origin. Message is the "error"
// field of the body, cleaned for logs (API key and token-like words removed,
// length capped); Details is the raw "details" field.
type StatusError struct {
	Call       string // "register", "sync", ...
	StatusCode int
	Message    string
	Details    json.RawMessage
}

func (e *StatusError) Error() string {
	var b strings.Builder
	b.WriteString("origin ")
	b.WriteString(e.Call)
	b.WriteString(": ")
	if e.Revoked() {
		b.WriteString("api key rejected, revoked or invalid (")
	} else {
		b.WriteString("unexpected answer (")
	}
	fmt.Fprintf(&b, "http %d", e.StatusCode)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	b.WriteString(")")
	return b.String()
}

// Revoked reports whether the status means the API key is not accepted.
func (e *StatusError) Revoked() bool {
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusGone:
		return true
	}
	return false
}

// Is makes errors.Is(err, ErrRevoked) true for 401, 403 and 410.
func (e *StatusError) Is(target error) bool {
	return target == ErrRevoked && e.Revoked()
}

// isStatus reports whether err is a StatusError with one of codes.
func isStatus(err error, codes ...int) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	return slices.Contains(codes, se.StatusCode)
}

// Options configure a [Client].
type Options struct {
	// BaseURL is origin.api_url, e.g. "https://torrentclaw.com". Calls go to
	// BaseURL + "/api/internal/agent/<call>"; a BaseURL that already ends in
	// "/api/internal/agent" is used as is.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <APIKey>". Never logged.
	APIKey string
	// AgentID, Name and Version identify this daemon in register, sync and
	// deregister; Version also goes into "User-Agent: torrentclaw/<Version>".
	AgentID, Name, Version string
	// HTTPClient is used for every call; nil means a dedicated client that
	// does not follow redirects. Its Timeout should be zero: the client
	// bounds each call itself, and the event stream must stay open.
	HTTPClient *http.Client
	// Timeout bounds each call (not the event stream); 0 means 30 s.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Client makes the origin calls. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	apiKey    string
	agentID   string
	name      string
	version   string
	userAgent string
	http      *http.Client
	timeout   time.Duration
	log       *slog.Logger
}

// New checks opts and returns a Client. It sends nothing.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(opts.BaseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("origin: base url must be an absolute http(s) url")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("origin: base url must not carry credentials, a query or a fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path+"/", APIPath) {
		u.Path += strings.TrimSuffix(APIPath, "/")
	}
	u.Path += "/"
	u.RawPath = ""
	if opts.APIKey == "" {
		return nil, errors.New("origin: api key is empty")
	}
	if strings.ContainsAny(opts.APIKey, "\r\n") {
		return nil, errors.New("origin: api key contains a line break")
	}
	if opts.AgentID == "" {
		return nil, errors.New("origin: agent id is empty")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "origin")
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // an API that redirects is misconfigured; say so
			},
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	c := &Client{
		base:      u,
		apiKey:    opts.APIKey,
		agentID:   opts.AgentID,
		name:      opts.Name,
		version:   version,
		userAgent: "torrentclaw/" + version,
		http:      hc,
		timeout:   timeout,
		log:       log,
	}
	if u.Scheme == "http" && !netaddr.IsLoopbackListen(u.Hostname()) {
		log.Warn("origin api url is not https; the api key travels in clear", "host", u.Host)
	}
	return c, nil
}

// AgentID returns the agent id the client reports.
func (c *Client) AgentID() string { return c.agentID }

// CloseIdleConnections closes kept-alive connections to the origin.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Register announces the daemon. Identity fields of req are overwritten from
// Options. An explicit "success": false is an error.
func (c *Client) Register(ctx context.Context, req RegisterRequest) (RegisterReply, error) {
	req.AgentID, req.Name, req.OS, req.Arch, req.Version = c.agentID, c.name, runtime.GOOS, runtime.GOARCH, c.version
	body, err := c.call(ctx, "register", http.MethodPost, req, c.timeout)
	if err != nil {
		return RegisterReply{}, err
	}
	var r RegisterReply
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &r); err != nil {
			return RegisterReply{}, fmt.Errorf("origin register: decode reply: %s", describeJSONError(err))
		}
	}
	if r.Success != nil && !*r.Success {
		return r, errors.New("origin register: origin answered success=false")
	}
	return r, nil
}

// Sync sends the heartbeat and returns what the origin asks for. Identity
// fields of req are overwritten from Options. Malformed entries of the reply
// are skipped and logged (see [DecodeSyncReply]).
func (c *Client) Sync(ctx context.Context, req SyncRequest) (SyncReply, error) {
	req.AgentID, req.Name, req.OS, req.Arch, req.Version = c.agentID, c.name, runtime.GOOS, runtime.GOARCH, c.version
	if req.Tasks == nil {
		req.Tasks = []TaskState{} // the origin gets [] rather than null
	}
	body, err := c.call(ctx, "sync", http.MethodPost, req, c.timeout)
	if err != nil {
		return SyncReply{}, err
	}
	r, err := DecodeSyncReply(c.log, body)
	if err != nil {
		return SyncReply{}, fmt.Errorf("origin sync: %w", err)
	}
	return r, nil
}

// Status posts a batch of progress updates and returns the per-update
// results (see [DecodeStatusReply]). A 2xx answer whose body is not a JSON
// object is logged and counts as delivered with no results.
func (c *Client) Status(ctx context.Context, updates []StatusUpdate) (StatusReply, error) {
	if updates == nil {
		updates = []StatusUpdate{}
	}
	body, err := c.call(ctx, "status", http.MethodPost, StatusRequest{Updates: updates}, c.timeout)
	if err != nil {
		return StatusReply{}, err
	}
	r, err := DecodeStatusReply(c.log, body, updates)
	if err != nil {
		// The origin accepted the batch (2xx); sending it again would not
		// make its answer readable.
		c.log.Warn("origin status reply unreadable; batch counted as delivered", "err", err)
		return StatusReply{}, nil
	}
	return r, nil
}

// Message caps for session-error.
const (
	maxCodeBytes    = 64
	maxMessageBytes = 1024
)

// SessionReady tells the origin that HLS session id is ready to play.
func (c *Client) SessionReady(ctx context.Context, sessionID string) error {
	if !ValidSessionID(sessionID) {
		return errors.New("origin session-ready: invalid session id")
	}
	_, err := c.call(ctx, "session-ready", http.MethodPost, SessionReadyRequest{SessionID: sessionID}, c.timeout)
	return err
}

// SessionError tells the origin that HLS session id failed, with a short
// machine code (e.g. "no_ffmpeg") and a human message (capped at 1 KiB).
func (c *Client) SessionError(ctx context.Context, sessionID, code, message string) error {
	if !ValidSessionID(sessionID) {
		return errors.New("origin session-error: invalid session id")
	}
	req := SessionErrorRequest{SessionID: sessionID, Code: truncate(code, maxCodeBytes), Message: truncate(message, maxMessageBytes)}
	_, err := c.call(ctx, "session-error", http.MethodPost, req, c.timeout)
	return err
}

// Deregister tells the origin the daemon is going away.
func (c *Client) Deregister(ctx context.Context) error {
	_, err := c.call(ctx, "deregister", http.MethodPost, DeregisterRequest{AgentID: c.agentID}, c.timeout)
	return err
}

// wake long-polls GET wake for up to timeout. A wait that runs out (no
// answer within timeout while ctx is alive) is not an error: it gives false.
func (c *Client) wake(ctx context.Context, timeout time.Duration) (bool, error) {
	body, err := c.call(ctx, "wake", http.MethodGet, nil, timeout)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return false, nil
		}
		return false, err
	}
	var r wakeReply
	if err := json.Unmarshal(body, &r); err != nil {
		c.log.Debug("origin wake reply ignored", "reason", describeJSONError(err))
		return false, nil
	}
	return r.Wake, nil
}

// openEvents opens GET events. It returns the response (status 200 with an
// event-stream content type) or an error; 404/405/501 and a non-event-stream
// 200 give errEventsUnsupported. The caller closes the body.
func (c *Client) openEvents(ctx context.Context) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, callError("events", err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := readCapped(resp.Body)
		resp.Body.Close()
		se := c.statusError("events", resp.StatusCode, body)
		if isStatus(se, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented) {
			return nil, fmt.Errorf("%w: %w", errEventsUnsupported, se)
		}
		return nil, se
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: content type is not text/event-stream", errEventsUnsupported)
	}
	return resp, nil
}

var errEventsUnsupported = errors.New("origin events: not offered")

func (c *Client) newRequest(ctx context.Context, method, call string, body []byte) (*http.Request, error) {
	u := *c.base
	u.Path += call
	if method == http.MethodGet {
		// GET calls have no body: the agent id travels in the query.
		u.RawQuery = url.Values{"agentId": {c.agentID}}.Encode()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, fmt.Errorf("origin %s: build request: %w", call, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// call performs one request with a timeout and returns the body of a 2xx
// answer (capped at MaxBodyBytes) or an error.
func (c *Client) call(ctx context.Context, call, method string, in any, timeout time.Duration) ([]byte, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, fmt.Errorf("origin %s: encode request: %w", call, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := c.newRequest(ctx, method, call, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, callError(call, err)
	}
	defer resp.Body.Close()
	data, err := readCapped(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.statusError(call, resp.StatusCode, data)
	}
	if err != nil {
		return nil, fmt.Errorf("origin %s: read reply: %w", call, err)
	}
	return data, nil
}

// callError strips the URL from transport errors (it is long and adds
// nothing) and keeps the cause for errors.Is.
func callError(call string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("origin %s: %w", call, err)
}

// readCapped reads at most MaxBodyBytes; more is ErrBodyTooLarge.
func readCapped(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBodyBytes {
		return nil, fmt.Errorf("%w (over %d bytes)", ErrBodyTooLarge, MaxBodyBytes)
	}
	return data, nil
}

func (c *Client) statusError(call string, code int, body []byte) *StatusError {
	se := &StatusError{Call: call, StatusCode: code}
	var eb errorBody
	if len(body) > 0 && json.Unmarshal(body, &eb) == nil {
		se.Message = c.clean(eb.Error)
		se.Details = eb.Details
	}
	return se
}

// tokenLike matches words that could be secrets (tokens, keys).
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_.~+/=-]{32,}`)

const maxErrorMessageBytes = 200

// clean makes an origin error message safe to log: no API key, no
// token-like words, printable, capped.
func (c *Client) clean(s string) string {
	if c.apiKey != "" {
		s = strings.ReplaceAll(s, c.apiKey, "REDACTED")
	}
	s = tokenLike.ReplaceAllString(s, "REDACTED")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return truncate(strings.TrimSpace(s), maxErrorMessageBytes)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Probe checks that the origin answers and does not reject the API key,
// without side effects: it opens the wake long poll and waits at most
// timeout. An answer of 2xx, or a wait that runs out on an open connection,
// passes (an origin checks the key before it starts to wait); 401/403/410
// give an error matching [ErrRevoked]; anything else is returned.
func (c *Client) Probe(ctx context.Context, timeout time.Duration) error {
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	_, err := c.call(ctx, "wake", http.MethodGet, nil, timeout)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && connected.Load() {
		return nil
	}
	return err
}
