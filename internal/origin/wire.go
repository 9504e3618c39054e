package origin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/torrentclaw/cli/internal/ids"
)

// Task states carried in [TaskState.Status].
const (
	StatusResolving   = "resolving"
	StatusDownloading = "downloading"
	StatusSeeding     = "seeding"
	StatusCompleted   = "completed"
	StatusFailed      = "failed"
)

// Task modes carried in [NewTask.Mode].
const (
	ModeDownload = "download"
	ModeStream   = "stream"
)

// Control actions carried in [Control.Action].
const (
	ActionPause      = "pause"
	ActionResume     = "resume"
	ActionCancel     = "cancel"
	ActionStream     = "stream"
	ActionStopStream = "stop-stream"
)

// RegisterRequest is the body of POST register. The identity fields (AgentID,
// Name, OS, Arch, Version) are filled by [Client] from its [Options].
type RegisterRequest struct {
	AgentID         string `json:"agentId"`
	Name            string `json:"name"`
	OS              string `json:"os"`
	Arch            string `json:"arch"`
	Version         string `json:"version"`
	DownloadDir     string `json:"downloadDir"`
	DiskFreeBytes   int64  `json:"diskFreeBytes"`
	DiskTotalBytes  int64  `json:"diskTotalBytes"`
	StreamPort      int    `json:"streamPort"`
	HTTPSStreamPort int    `json:"httpsStreamPort,omitempty"`
	LanIP           string `json:"lanIp,omitempty"`
	TailscaleIP     string `json:"tailscaleIp,omitempty"`
}

// RegisterReply is the answer to register. User and Features are kept raw:
// the daemon does not depend on their shape. An explicit "success": false is
// reported by [Client.Register] as an error.
type RegisterReply struct {
	Success  *bool           `json:"success,omitempty"`
	User     json.RawMessage `json:"user,omitempty"`
	Features json.RawMessage `json:"features,omitempty"`
}

// SyncRequest is the body of POST sync, the heartbeat. The identity fields
// are filled by [Client].
type SyncRequest struct {
	AgentID         string      `json:"agentId"`
	Version         string      `json:"version"`
	OS              string      `json:"os"`
	Arch            string      `json:"arch"`
	Name            string      `json:"name"`
	StreamPort      int         `json:"streamPort"`
	HTTPSStreamPort int         `json:"httpsStreamPort,omitempty"`
	LanIP           string      `json:"lanIp,omitempty"`
	TailscaleIP     string      `json:"tailscaleIp,omitempty"`
	FreeSlots       int         `json:"freeSlots"`
	Tasks           []TaskState `json:"tasks"`
}

// TaskState is one task as reported in sync.tasks and, as [StatusUpdate], in
// status batches. StreamURL carries tokens: never log it (LogValue leaves it
// out).
type TaskState struct {
	TaskID          string  `json:"taskId"`
	Status          string  `json:"status"`   // resolving|downloading|seeding|completed|failed
	Progress        float64 `json:"progress"` // percent, 0-100
	DownloadedBytes int64   `json:"downloadedBytes"`
	TotalBytes      int64   `json:"totalBytes"`
	SpeedBps        int64   `json:"speedBps"` // bytes per second
	ETA             int64   `json:"eta"`      // seconds; 0 when unknown or done
	FileName        string  `json:"fileName,omitempty"`
	StreamURL       string  `json:"streamUrl,omitempty"` // see [StreamURLs]
	StreamReady     bool    `json:"streamReady"`
	ErrorMessage    string  `json:"errorMessage,omitempty"`
}

// LogValue logs a task state without its stream URLs (they carry tokens).
func (s TaskState) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("task_id", s.TaskID),
		slog.String("status", s.Status),
		slog.Float64("progress", s.Progress),
		slog.Bool("stream_ready", s.StreamReady),
	)
}

// StatusUpdate is a progress report pushed with [Loop.Report] and sent in
// status batches. It has the same fields as [TaskState].
type StatusUpdate = TaskState

// StreamURLs are a task's stream URLs per network, each a full
// "/stream?id=…&t=…" URL. Empty ones are omitted on the wire.
type StreamURLs struct {
	LAN string `json:"lan,omitempty"`
	TS  string `json:"ts,omitempty"`
	Pub string `json:"pub,omitempty"`
	// The same URLs on the HTTPS media listener (stream.tls_port), for
	// pages served over https that cannot load http media.
	LANHTTPS string `json:"lanHttps,omitempty"`
	TSHTTPS  string `json:"tsHttps,omitempty"`
	PubHTTPS string `json:"pubHttps,omitempty"`
}

// Encode returns the JSON object as the string carried in
// [TaskState.StreamURL], e.g. `{"lan":"http://…","ts":"http://…"}`, or ""
// when every URL is empty.
func (u StreamURLs) Encode() string {
	if u == (StreamURLs{}) {
		return ""
	}
	b, err := json.Marshal(u)
	if err != nil {
		panic("origin: marshal StreamURLs: " + err.Error()) // strings always marshal
	}
	return string(b)
}

// ParseStreamURLs decodes a [TaskState.StreamURL] string; "" gives zero URLs.
func ParseStreamURLs(s string) (StreamURLs, error) {
	var u StreamURLs
	if s == "" {
		return u, nil
	}
	if err := json.Unmarshal([]byte(s), &u); err != nil {
		return StreamURLs{}, fmt.Errorf("parse stream urls: %s", describeJSONError(err))
	}
	return u, nil
}

// SyncReply is the decoded answer to sync. Only valid entries are present:
// malformed ones were skipped (and logged by index) while decoding.
type SyncReply struct {
	NewTasks       []NewTask       `json:"newTasks,omitempty"`
	Controls       []Control       `json:"controls,omitempty"`
	StreamRequests []StreamRequest `json:"streamRequests,omitempty"`
	StreamSessions []StreamSession `json:"streamSessions,omitempty"`
	Watching       bool            `json:"watching,omitempty"`
	// Rejected lists the skipped entries whose task ID can be reported
	// back (at most one per ID); [Loop] reports each as failed with its
	// code. Agents need not look at it.
	Rejected []Rejected `json:"-"`
}

// Rejected is an entry skipped while decoding a sync reply.
type Rejected struct {
	// TaskID is the entry's ID as sent, when it is printable and at most
	// 256 bytes (an invalid ID is reported back so the origin can show
	// the error); never logged beyond that.
	TaskID string
	// Code is one of the Code constants ([CodeInvalidID],
	// [CodeInvalidSource], [CodeInvalidEntry]).
	Code string
}

// Empty reports whether r asks for nothing (Watching aside).
func (r SyncReply) Empty() bool {
	return len(r.NewTasks) == 0 && len(r.Controls) == 0 &&
		len(r.StreamRequests) == 0 && len(r.StreamSessions) == 0
}

// NewTask asks the daemon to add a task. At least one of InfoHash, Magnet
// and TorrentURL is set. StreamToken, when set, is the task's stream token.
type NewTask struct {
	ID                   string    `json:"id"`
	InfoHash             string    `json:"infoHash,omitempty"`
	Title                string    `json:"title,omitempty"`
	Mode                 string    `json:"mode,omitempty"` // download|stream; "" is download
	Magnet               string    `json:"magnet,omitempty"`
	TorrentURL           string    `json:"torrentUrl,omitempty"`
	FileIndex            *int      `json:"fileIndex,omitempty"` // nil: the largest video file
	StreamToken          string    `json:"streamToken,omitempty"`
	StreamTokenExpiresAt time.Time `json:"streamTokenExpiresAt,omitzero"`
}

// LogValue logs a new task without its token.
func (t NewTask) LogValue() slog.Value {
	return slog.GroupValue(slog.String("task_id", t.ID), slog.String("mode", t.Mode),
		slog.Bool("has_token", t.StreamToken != ""))
}

// Control asks the daemon to act on an existing task.
type Control struct {
	Action               string    `json:"action"` // pause|resume|cancel|stream|stop-stream
	TaskID               string    `json:"taskId"`
	DeleteFiles          bool      `json:"deleteFiles,omitempty"`
	StreamToken          string    `json:"streamToken,omitempty"`
	StreamTokenExpiresAt time.Time `json:"streamTokenExpiresAt,omitzero"`
}

// LogValue logs a control without its token.
func (c Control) LogValue() slog.Value {
	return slog.GroupValue(slog.String("action", c.Action), slog.String("task_id", c.TaskID),
		slog.Bool("has_token", c.StreamToken != ""))
}

// StreamRequest asks the daemon to make a task streamable (and to report its
// stream URLs).
type StreamRequest struct {
	TaskID               string    `json:"taskId"`
	StreamToken          string    `json:"streamToken,omitempty"`
	StreamTokenExpiresAt time.Time `json:"streamTokenExpiresAt,omitzero"`
}

// LogValue logs a stream request without its token.
func (s StreamRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("task_id", s.TaskID), slog.Bool("has_token", s.StreamToken != ""))
}

// StreamSession asks the daemon to start an HLS session; the daemon answers
// later with [Loop.SessionReady] or [Loop.SessionError].
type StreamSession struct {
	SessionID            string    `json:"sessionId"`
	TaskID               string    `json:"taskId"`
	FileIndex            *int      `json:"fileIndex,omitempty"`
	StartSec             *float64  `json:"startSec,omitempty"`
	StreamToken          string    `json:"streamToken,omitempty"`
	StreamTokenExpiresAt time.Time `json:"streamTokenExpiresAt,omitzero"`
	// AudioLanguage and SubtitleLanguage (BCP 47 or ISO 639) pick the
	// DEFAULT audio and subtitle renditions; every track is offered.
	AudioLanguage    string `json:"audioLanguage,omitempty"`
	SubtitleLanguage string `json:"subtitleLanguage,omitempty"`
}

// LogValue logs a session request without its token.
func (s StreamSession) LogValue() slog.Value {
	return slog.GroupValue(slog.String("session_id", s.SessionID), slog.String("task_id", s.TaskID),
		slog.Bool("has_token", s.StreamToken != ""))
}

// StatusRequest is the body of POST status.
type StatusRequest struct {
	Updates []StatusUpdate `json:"updates"`
}

// StatusResult is the origin's answer for one update of a status batch. The
// wire entry is matched to its update by position; TaskID is filled in from
// that update.
type StatusResult struct {
	TaskID               string    `json:"taskId,omitempty"`
	Cancelled            bool      `json:"cancelled,omitempty"`
	Paused               bool      `json:"paused,omitempty"`
	DeleteFiles          bool      `json:"deleteFiles,omitempty"`
	StreamRequested      bool      `json:"streamRequested,omitempty"`
	StreamToken          string    `json:"streamToken,omitempty"`
	StreamTokenExpiresAt time.Time `json:"streamTokenExpiresAt,omitzero"`
}

// LogValue logs a status result without its token.
func (r StatusResult) LogValue() slog.Value {
	return slog.GroupValue(slog.String("task_id", r.TaskID), slog.Bool("cancelled", r.Cancelled),
		slog.Bool("paused", r.Paused), slog.Bool("stream_requested", r.StreamRequested),
		slog.Bool("has_token", r.StreamToken != ""))
}

func (r StatusResult) empty() bool {
	return !r.Cancelled && !r.Paused && !r.DeleteFiles && !r.StreamRequested && r.StreamToken == ""
}

// StatusReply is the decoded answer to status. Results[i] answers
// Updates[i]; entries that were malformed or answered nothing are dropped.
// Watching is nil when the origin did not say.
type StatusReply struct {
	Results  []StatusResult `json:"results,omitempty"`
	Watching *bool          `json:"watching,omitempty"`
}

// SessionReadyRequest is the body of POST session-ready.
type SessionReadyRequest struct {
	SessionID string `json:"sessionId"`
}

// SessionErrorRequest is the body of POST session-error.
type SessionErrorRequest struct {
	SessionID string `json:"sessionId"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// DeregisterRequest is the body of POST deregister.
type DeregisterRequest struct {
	AgentID string `json:"agentId"`
}

// wakeReply is the answer to GET wake.
type wakeReply struct {
	Wake bool `json:"wake"`
}

// errorBody is the shape of every error answer.
type errorBody struct {
	Error   string          `json:"error"`
	Details json.RawMessage `json:"details,omitempty"`
}

// Limits on what the origin may send.
const (
	maxIDBytes = 256
	// maxEntries bounds the entries of each list of a sync reply; the rest
	// are dropped with a log line.
	maxEntries     = 500
	maxTitleBytes  = 1024
	maxSourceBytes = 64 << 10 // a magnet with many trackers
)

// ValidToken reports whether s has the shape of a stream token: 32-128
// characters of [A-Za-z0-9_.~-]. It is [ids.ValidToken], the rule the token
// package uses too.
func ValidToken(s string) bool { return ids.ValidToken(s) }

// ValidSessionID reports whether s matches ^[A-Za-z0-9_-]{1,128}$. It is
// [ids.ValidSessionID].
func ValidSessionID(s string) bool { return ids.ValidSessionID(s) }

// entryError is why an entry was skipped. Its text is fixed and never holds
// a value from the entry (a value could be a token).
type entryError string

func (e entryError) Error() string { return string(e) }

const (
	errMissingID      entryError = "missing or invalid id"
	errMissingTaskID  entryError = "missing or invalid taskId"
	errMissingSource  entryError = "no infoHash, magnet or torrentUrl"
	errBadSource      entryError = "invalid infoHash, magnet or torrentUrl"
	errBadMode        entryError = "unknown mode"
	errBadAction      entryError = "unknown action"
	errBadFileIndex   entryError = "invalid fileIndex"
	errBadStartSec    entryError = "invalid startSec"
	errBadToken       entryError = "malformed streamToken"
	errBadSessionID   entryError = "invalid sessionId"
	errBadTitle       entryError = "invalid title"
	errBadTimestamp   entryError = "invalid streamTokenExpiresAt"
	errExpiryNoToken  entryError = "streamTokenExpiresAt without streamToken"
	errNotJSONObject  entryError = "entry is not a JSON object"
	errReplyNotObject entryError = "reply is not a JSON object"
)

// validText reports whether s is valid UTF-8 of at most max bytes without
// control characters.
func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// validID is the one task-ID rule ([ids.ValidTaskID]): an ID that media or
// control would refuse is never accepted here.
func validID(s string) bool { return ids.ValidTaskID(s) }

// checkSources applies DESIGN.md's source rules to a new task: magnet a
// magnet: URI, infoHash a v1 (40 hex or 32 base32) or v2 (64 hex) info hash,
// torrentUrl an absolute http or https URL with a host. Anything else (a
// file:// URL, a local path, a FIFO) is refused here, before anything is
// opened or fetched, whatever the daemon would make of it.
func checkSources(infoHash, magnet, torrentURL string) error {
	for _, s := range []string{infoHash, magnet, torrentURL} {
		if !validText(s, maxSourceBytes) {
			return errBadSource
		}
	}
	if infoHash != "" {
		if _, ok := ids.ParseInfoHash(infoHash); !ok {
			return errBadSource
		}
	}
	if magnet != "" && !hasPrefixFold(magnet, "magnet:?") {
		return errBadSource
	}
	if torrentURL != "" && !ValidTorrentURL(torrentURL) {
		return errBadSource
	}
	return nil
}

// ValidTorrentURL reports whether s is an absolute http or https URL with a
// host and no user info: the only torrent URLs the origin may send.
func ValidTorrentURL(s string) bool {
	if !hasPrefixFold(s, "http://") && !hasPrefixFold(s, "https://") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Hostname() == "" || u.User != nil || u.Opaque != "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	return scheme == "http" || scheme == "https"
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func checkToken(tok string, exp time.Time) error {
	if tok != "" && !ValidToken(tok) {
		return errBadToken
	}
	if tok == "" && !exp.IsZero() {
		return errExpiryNoToken
	}
	return nil
}

func checkFileIndex(p *int) error {
	if p != nil && *p < 0 {
		return errBadFileIndex
	}
	return nil
}

func (t *NewTask) validate() error {
	if !validID(t.ID) {
		return errMissingID
	}
	switch t.Mode {
	case "":
		t.Mode = ModeDownload
	case ModeDownload, ModeStream:
	default:
		return errBadMode
	}
	if t.InfoHash == "" && t.Magnet == "" && t.TorrentURL == "" {
		return errMissingSource
	}
	if err := checkSources(t.InfoHash, t.Magnet, t.TorrentURL); err != nil {
		return err
	}
	if !validText(t.Title, maxTitleBytes) {
		return errBadTitle
	}
	if err := checkFileIndex(t.FileIndex); err != nil {
		return err
	}
	return checkToken(t.StreamToken, t.StreamTokenExpiresAt)
}

func (c *Control) validate() error {
	switch c.Action {
	case ActionPause, ActionResume, ActionCancel, ActionStream, ActionStopStream:
	default:
		return errBadAction
	}
	if !validID(c.TaskID) {
		return errMissingTaskID
	}
	return checkToken(c.StreamToken, c.StreamTokenExpiresAt)
}

func (s *StreamRequest) validate() error {
	if !validID(s.TaskID) {
		return errMissingTaskID
	}
	return checkToken(s.StreamToken, s.StreamTokenExpiresAt)
}

func (s *StreamSession) validate() error {
	if !ValidSessionID(s.SessionID) {
		return errBadSessionID
	}
	if !validID(s.TaskID) {
		return errMissingTaskID
	}
	if err := checkFileIndex(s.FileIndex); err != nil {
		return err
	}
	if s.StartSec != nil && (*s.StartSec < 0 || math.IsNaN(*s.StartSec) || math.IsInf(*s.StartSec, 0)) {
		return errBadStartSec
	}
	return checkToken(s.StreamToken, s.StreamTokenExpiresAt)
}

func (r *StatusResult) validate() error {
	return checkToken(r.StreamToken, r.StreamTokenExpiresAt)
}

// optTime decodes streamTokenExpiresAt: null and "" mean "not given",
// anything else must be an RFC 3339 string.
type optTime time.Time

func (t *optTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" || string(b) == `""` {
		*t = optTime{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errBadTimestamp
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return errBadTimestamp
	}
	*t = optTime(v)
	return nil
}

// The UnmarshalJSON methods below decode an entry as usual except for
// streamTokenExpiresAt, which goes through optTime: each embeds the entry's
// method-less copy as plain (so error field paths read "plain.…", see
// describeJSONError) beside an optTime field, which is shallower and so
// shadows the entry's own, and hands both to decodeExpiring.

// decodeExpiring decodes b into w, the wrapper of an entry described above, and
// stores the expiry its exp field received in *dst.
func decodeExpiring(b []byte, w any, exp *optTime, dst *time.Time) error {
	if err := json.Unmarshal(b, w); err != nil {
		return err
	}
	*dst = time.Time(*exp)
	return nil
}

// UnmarshalJSON decodes a newTasks entry.
func (t *NewTask) UnmarshalJSON(b []byte) error {
	type plain NewTask
	w := struct {
		*plain
		Exp optTime `json:"streamTokenExpiresAt"`
	}{plain: (*plain)(t)}
	return decodeExpiring(b, &w, &w.Exp, &t.StreamTokenExpiresAt)
}

// UnmarshalJSON decodes a controls entry.
func (c *Control) UnmarshalJSON(b []byte) error {
	type plain Control
	w := struct {
		*plain
		Exp optTime `json:"streamTokenExpiresAt"`
	}{plain: (*plain)(c)}
	return decodeExpiring(b, &w, &w.Exp, &c.StreamTokenExpiresAt)
}

// UnmarshalJSON decodes a streamRequests entry.
func (s *StreamRequest) UnmarshalJSON(b []byte) error {
	type plain StreamRequest
	w := struct {
		*plain
		Exp optTime `json:"streamTokenExpiresAt"`
	}{plain: (*plain)(s)}
	return decodeExpiring(b, &w, &w.Exp, &s.StreamTokenExpiresAt)
}

// UnmarshalJSON decodes a streamSessions entry.
func (s *StreamSession) UnmarshalJSON(b []byte) error {
	type plain StreamSession
	w := struct {
		*plain
		Exp optTime `json:"streamTokenExpiresAt"`
	}{plain: (*plain)(s)}
	return decodeExpiring(b, &w, &w.Exp, &s.StreamTokenExpiresAt)
}

// UnmarshalJSON decodes a status results entry.
func (r *StatusResult) UnmarshalJSON(b []byte) error {
	type plain StatusResult
	w := struct {
		*plain
		Exp optTime `json:"streamTokenExpiresAt"`
	}{plain: (*plain)(r)}
	return decodeExpiring(b, &w, &w.Exp, &r.StreamTokenExpiresAt)
}

// describeJSONError names the kind of a decoding error without quoting the
// offending value (which could be a token).
func describeJSONError(err error) string {
	var (
		syn   *json.SyntaxError
		typ   *json.UnmarshalTypeError
		entry entryError
	)
	switch {
	case errors.As(err, &entry):
		return string(entry)
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at offset %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("wrong type for field %s (want %s)", safeField(strings.TrimPrefix(typ.Field, "plain.")), typ.Type)
		}
		return fmt.Sprintf("wrong type (want %s)", typ.Type)
	default:
		return "invalid JSON"
	}
}

// safeField keeps a JSON field path printable and short (paths come from our
// struct tags, but a hostile key could reach here through a map).
func safeField(s string) string {
	if len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "(unprintable)"
	}
	return s
}

// isJSONObject reports whether b (trimmed) starts like an object.
func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// decodeEntries decodes a JSON array entry by entry. A field that is absent
// or null gives nil; a field that is not an array is logged and ignored; an
// entry that fails to decode or validate is logged with its index and the
// kind of error, and skipped. Only the first maxEntries entries are read.
// A skipped entry whose idField holds a reportable ID is added to rejected:
// every skipped entry of a list that adds tasks (newTasks), only those
// with an invalid ID elsewhere (a malformed control must not mark a healthy
// task failed).
func decodeEntries[T any](log *slog.Logger, reply, field, idField string, raw json.RawMessage, validate func(*T) error, rejected *[]Rejected) []T {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		log.Warn("origin reply field ignored", "reply", reply, "field", field, "reason", describeJSONError(err))
		return nil
	}
	if len(items) > maxEntries {
		log.Warn("origin reply entries dropped", "reply", reply, "field", field, "entries", len(items), "max", maxEntries)
		items = items[:maxEntries]
	}
	out := make([]T, 0, len(items))
	for i, item := range items {
		var v T
		if err := decodeEntry(item, &v, validate); err != nil {
			log.Warn("origin reply entry skipped", "reply", reply, "field", field, "index", i, "reason", describeJSONError(err))
			if rejected != nil && (idField == "id" || codeOf(err) == CodeInvalidID) {
				reject(rejected, item, idField, err)
			}
			continue
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil // no valid entry reads the same as an absent field
	}
	return out
}

// reject records a skipped entry for reporting when its ID is a printable
// string of at most maxIDBytes, once per ID.
func reject(rejected *[]Rejected, item json.RawMessage, idField string, err error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(item, &top) != nil {
		return
	}
	var id string
	if json.Unmarshal(top[idField], &id) != nil || id == "" || !validText(id, maxIDBytes) {
		return
	}
	for _, r := range *rejected {
		if r.TaskID == id {
			return
		}
	}
	*rejected = append(*rejected, Rejected{TaskID: id, Code: codeOf(err)})
}

// decodeEntry decodes one array entry into v and validates it; an entry that
// is not a JSON object gives errNotJSONObject.
func decodeEntry[T any](item json.RawMessage, v *T, validate func(*T) error) error {
	if !isJSONObject(item) {
		return errNotJSONObject
	}
	if err := json.Unmarshal(item, v); err != nil {
		return err
	}
	return validate(v)
}

// decodeBool decodes an optional boolean field; anything but true/false/null
// is logged and treated as absent.
func decodeBool(log *slog.Logger, reply, field string, raw json.RawMessage) *bool {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		log.Warn("origin reply field ignored", "reply", reply, "field", field, "reason", describeJSONError(err))
		return nil
	}
	return &b
}

// decodeObject decodes the top level of a reply into its fields. Unknown
// fields are kept and ignored by the callers.
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil // an empty 2xx body means "nothing to say"
	}
	if !isJSONObject(data) {
		return nil, errReplyNotObject
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	return top, nil
}

// DecodeSyncReply decodes a sync reply tolerantly: unknown fields are
// ignored, a field of the wrong type is ignored, and each malformed entry is
// skipped with a log line naming its field, index and error kind (never its
// content). An empty body reads as {}. It fails only when data is
// something else than a JSON object.
func DecodeSyncReply(log *slog.Logger, data []byte) (SyncReply, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	top, err := decodeObject(data)
	if err != nil {
		return SyncReply{}, fmt.Errorf("decode sync reply: %s", describeJSONError(err))
	}
	var r SyncReply
	r.NewTasks = decodeEntries(log, "sync", "newTasks", "id", top["newTasks"], (*NewTask).validate, &r.Rejected)
	r.Controls = decodeEntries(log, "sync", "controls", "taskId", top["controls"], (*Control).validate, &r.Rejected)
	r.StreamRequests = decodeEntries(log, "sync", "streamRequests", "taskId", top["streamRequests"], (*StreamRequest).validate, &r.Rejected)
	r.StreamSessions = decodeEntries(log, "sync", "streamSessions", "taskId", top["streamSessions"], (*StreamSession).validate, &r.Rejected)
	if w := decodeBool(log, "sync", "watching", top["watching"]); w != nil {
		r.Watching = *w
	}
	return r, nil
}

// DecodeStatusReply decodes a status reply for updates, matching results to
// updates by position. Like [DecodeSyncReply] it skips malformed entries;
// it also drops results beyond len(updates) and results that ask nothing.
func DecodeStatusReply(log *slog.Logger, data []byte, updates []StatusUpdate) (StatusReply, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	top, err := decodeObject(data)
	if err != nil {
		return StatusReply{}, fmt.Errorf("decode status reply: %s", describeJSONError(err))
	}
	var r StatusReply
	r.Watching = decodeBool(log, "status", "watching", top["watching"])
	raw := top["results"]
	if len(raw) == 0 || string(raw) == "null" {
		return r, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		log.Warn("origin reply field ignored", "reply", "status", "field", "results", "reason", describeJSONError(err))
		return r, nil
	}
	if len(items) > len(updates) {
		log.Warn("origin status reply has extra results", "results", len(items), "updates", len(updates))
		items = items[:len(updates)]
	}
	for i, item := range items {
		var res StatusResult
		if err := decodeEntry(item, &res, (*StatusResult).validate); err != nil {
			log.Warn("origin reply entry skipped", "reply", "status", "field", "results", "index", i, "reason", describeJSONError(err))
			continue
		}
		res.TaskID = updates[i].TaskID
		if !res.empty() {
			r.Results = append(r.Results, res)
		}
	}
	return r, nil
}
