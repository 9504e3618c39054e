package control

import (
	"time"

	"github.com/torrentclaw/cli/internal/tasks"
)

// StatusResponse is the reply of GET /v1/status: the daemon's identity, where
// its media listener answers, its origin and UPnP state, and every task. It
// never contains a token.
type StatusResponse struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
	// InProcess reports a daemon run inside a `torrentclaw stream` command.
	InProcess bool      `json:"inProcess,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`

	// MediaURLs are the base URLs of the media listener
	// ("http://192.168.1.20:11818"), best first: LAN, Tailscale, public, TLS.
	MediaURLs []string  `json:"mediaUrls"`
	Addresses Addresses `json:"addresses"`

	// RequireStreamToken reports whether a task without a token is refused
	// (true) or served token-less (false).
	RequireStreamToken bool `json:"requireStreamToken"`

	Origin OriginStatus `json:"origin"`

	// UPnP is a one-line summary: "disabled", "mapped 11818 -> 203.0.113.7",
	// "failed: no gateway found", …
	UPnP string `json:"upnp"`

	// HLS is a one-line summary: "available", "ffmpeg not found", …
	HLS string `json:"hls,omitempty"`

	Tasks []TaskInfo `json:"tasks"`
}

// Addresses are the addresses the daemon knows for itself. Empty strings are
// unknown; zero ports are not bound.
type Addresses struct {
	Listen      string `json:"listen"`              // media listener, as bound ("0.0.0.0:11818")
	LAN         string `json:"lan,omitempty"`       // IP of the default-route interface
	Tailscale   string `json:"tailscale,omitempty"` // IP in 100.64.0.0/10 or fd7a:115c:a1e0::/48
	Public      string `json:"public,omitempty"`    // UPnP external IP or stream.public_host
	MediaPort   int    `json:"mediaPort"`
	TLSPort     int    `json:"tlsPort,omitempty"`
	TorrentPort int    `json:"torrentPort"`
}

// OriginStatus describes the link to the web origin.
type OriginStatus struct {
	// Configured is false when no origin.api_url/api_key is set (standalone).
	Configured bool `json:"configured"`
	// URL is the origin's scheme and host, never the API key.
	URL string `json:"url,omitempty"`
	// State is the sync loop's state: "connecting", "connected", "backoff",
	// "stopped" (key revoked), …
	State     string    `json:"state,omitempty"`
	LastSync  time.Time `json:"lastSync,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

// TaskInfo is one task as the control socket reports it: its state and
// progress, and what its grants look like. It never contains a token.
type TaskInfo struct {
	ID       string `json:"id"`
	InfoHash string `json:"infoHash,omitempty"`
	Name     string `json:"name,omitempty"`
	// State is queued|resolving|downloading|paused|seeding|completed|failed.
	State           string  `json:"state"`
	Progress        float64 `json:"progress"` // 0-100
	DownloadedBytes int64   `json:"downloadedBytes"`
	TotalBytes      int64   `json:"totalBytes"`
	SpeedBps        int64   `json:"speedBps"` // bytes per second
	// UploadSpeedBps is the upload rate in bytes per second; UploadedBytes
	// the piece data sent to peers so far.
	UploadSpeedBps int64 `json:"uploadSpeedBps"`
	UploadedBytes  int64 `json:"uploadedBytes"`
	// Peers are the connected peers, KnownPeers every peer known
	// (connected, connecting or waiting).
	Peers      int `json:"peers"`
	KnownPeers int `json:"knownPeers"`
	// BufferedBytes is the verified data of the selected file after the
	// player's position (the latest read) without a gap; BufferedSeconds is
	// that in seconds of playback, 0 when the bitrate is unknown.
	BufferedBytes   int64   `json:"bufferedBytes"`
	BufferedSeconds float64 `json:"bufferedSeconds"`
	ETASeconds      int64   `json:"etaSeconds"` // 0 when unknown
	// BytesFromPeers counts useful piece data received from peers.
	BytesFromPeers int64  `json:"bytesFromPeers"`
	FileName       string `json:"fileName,omitempty"`
	FileIndex      int    `json:"fileIndex"` // -1 before metadata
	// StreamReady reports whether the selected file can be played now.
	StreamReady bool   `json:"streamReady"`
	Error       string `json:"error,omitempty"`
	// Notice is a non-fatal remark, e.g. "renamed 2 unsafe file names".
	Notice string `json:"notice,omitempty"`
	// FromOrigin marks a task the web origin asked for; Seeded one made by
	// `torrentclaw seed`.
	FromOrigin bool `json:"fromOrigin,omitempty"`
	Seeded     bool `json:"seeded,omitempty"`
	// HLSSessions counts the task's open HLS sessions; HLS describes them.
	HLSSessions int       `json:"hlsSessions,omitempty"`
	HLS         []HLSInfo `json:"hls,omitempty"`
	AddedAt     time.Time `json:"addedAt,omitzero"`

	Token TokenInfo  `json:"token"`
	Files []FileInfo `json:"files,omitempty"`
}

// TokenInfo describes a task's grants. It deliberately has no field for a
// token.
type TokenInfo struct {
	// Set reports whether the task has a live grant.
	Set bool `json:"set"`
	// Grants counts the live grants; NextExpiry is when the first ends,
	// ExpiresAt when the last one does.
	Grants     int       `json:"grants"`
	NextExpiry time.Time `json:"nextExpiry,omitzero"`
	ExpiresAt  time.Time `json:"expiresAt,omitzero"`
	// Locked: revoked (token revoke, the origin's stop-stream); every URL
	// answers 404 until a new grant.
	Locked bool `json:"locked,omitempty"`
	// EverGranted: the task had a grant, so it is never served token-less.
	EverGranted bool `json:"everGranted,omitempty"`
}

// FileInfo is one file of a task.
type FileInfo struct {
	Index    int    `json:"index"`
	Path     string `json:"path"` // sanitised, relative to the torrent root
	Length   int64  `json:"length"`
	Playable bool   `json:"playable"`
	// Probed reports that an HLS session has probed the file: Tracks then
	// lists every audio and subtitle track and Mode is set. Before that,
	// Tracks lists only the sidecar subtitle files found by name.
	Probed bool `json:"probed,omitempty"`
	// Mode is the HLS mode a session on this file uses: "copy",
	// "copy-video" (audio re-encoded) or "transcode"; "" before a probe.
	Mode   string      `json:"mode,omitempty"`
	Tracks []TrackInfo `json:"tracks,omitempty"`
}

// TrackInfo is one audio or subtitle track of a file.
type TrackInfo struct {
	Index    int    `json:"index"` // position among the file's tracks of its kind
	Kind     string `json:"kind"`  // "audio" or "subtitle"
	Codec    string `json:"codec,omitempty"`
	Language string `json:"language,omitempty"`
	Title    string `json:"title,omitempty"`
	Default  bool   `json:"default,omitempty"`
	// Channels is what HLS delivers (audio); Copy: passed through as it
	// is, else re-encoded to AAC stereo.
	Channels int  `json:"channels,omitempty"`
	Copy     bool `json:"copy,omitempty"`
	// Sidecar: a separate subtitle file of the torrent (File is its index).
	Sidecar bool `json:"sidecar,omitempty"`
	File    int  `json:"file,omitempty"`
	// Image: a bitmap subtitle (PGS, VobSub, DVB). It is not offered as a
	// rendition; it can only be burnt into the video on request
	// (stream --hls --burn-subs), and Burnt says a session does so.
	Image bool `json:"image,omitempty"`
	Burnt bool `json:"burnt,omitempty"`
}

// HLSInfo is one open HLS session of a task, as status shows it (no URL,
// no token).
type HLSInfo struct {
	FileIndex int `json:"fileIndex"`
	// State is "probing", "ready" or "failed".
	State string `json:"state"`
	// Mode is "copy", "copy-video" or "transcode" once ready.
	Mode string `json:"mode,omitempty"`
	// Running: an ffmpeg is producing segments now.
	Running bool `json:"running,omitempty"`
	// BurntSubtitles: an image subtitle track is burnt into its video.
	BurntSubtitles bool `json:"burntSubtitles,omitempty"`
}

// AddRequest is the body of POST /v1/tasks.
type AddRequest struct {
	// Source is a magnet link, a 40/64-hex infohash, an absolute path to a
	// .torrent file (as seen by the daemon) or an http(s) URL of one.
	Source string `json:"source"`
	// FileIndex selects the file to stream; -1 picks the largest video.
	FileIndex int `json:"fileIndex"`
	// HLS also starts an HLS session for the selected file.
	HLS bool `json:"hls,omitempty"`
	// AudioLanguage and SubtitleLanguage (BCP 47 or ISO 639) pick that
	// session's default audio and subtitle renditions; BurnSubtitles burns
	// an image subtitle track (PGS, VobSub) into its video.
	AudioLanguage    string `json:"audioLanguage,omitempty"`
	SubtitleLanguage string `json:"subtitleLanguage,omitempty"`
	BurnSubtitles    bool   `json:"burnSubtitles,omitempty"`
	Title            string `json:"title,omitempty"`
}

// AddResponse is the reply of POST /v1/tasks. It carries the freshly minted
// token (a new CLI grant): the caller asked for it.
type AddResponse struct {
	TaskID string `json:"taskId"`
	// Existing reports that the source was already a task: this is that
	// task, with a new grant added next to its others.
	Existing bool `json:"existing,omitempty"`
	// State is the task's state when the reply was made (queued, resolving, …).
	State       string      `json:"state,omitempty"`
	Token       tasks.Token `json:"token"`
	StreamURL   string      `json:"streamUrl"`
	PlaylistURL string      `json:"playlistUrl"`
	HLSURL      string      `json:"hlsUrl,omitempty"` // set when AddRequest.HLS
	ExpiresAt   time.Time   `json:"expiresAt"`
}

// TokenResponse is the reply of POST /v1/tasks/{id}/token: a new token, added
// as a grant next to the task's others (none of which it touches).
type TokenResponse struct {
	TaskID      string      `json:"taskId"`
	Token       tasks.Token `json:"token"`
	ExpiresAt   time.Time   `json:"expiresAt"`
	StreamURL   string      `json:"streamUrl"`
	PlaylistURL string      `json:"playlistUrl"`
}

// HLSRequest is the body of POST /v1/tasks/{id}/hls.
type HLSRequest struct {
	FileIndex int `json:"fileIndex"` // -1 = the task's selected file
}

// HLSResponse is the reply of POST /v1/tasks/{id}/hls.
type HLSResponse struct {
	SessionID string `json:"sessionId"`
	HLSURL    string `json:"hlsUrl"` // master playlist URL, carrying a new grant's token
}

// PingResponse is the reply of GET /v1/ping.
type PingResponse struct {
	OK  bool `json:"ok"`
	PID int  `json:"pid"`
	// InProcess reports a daemon run inside a `torrentclaw stream` command:
	// it stops when that command ends, and refuses tasks from other CLIs.
	InProcess bool `json:"inProcess,omitempty"`
}

// SeedRequest is the body of POST /v1/seed.
type SeedRequest struct {
	Path string `json:"path"` // absolute, as seen by the daemon
}

// SeedResponse is the reply of POST /v1/seed.
type SeedResponse struct {
	Magnet   string `json:"magnet"`
	InfoHash string `json:"infoHash"`
	Peer     string `json:"peer"` // host:port of the daemon's BitTorrent listener
}

// Level grades a doctor [Check].
type Level string

// Check levels.
const (
	LevelOK   Level = "ok"
	LevelWarn Level = "warn" // works, but degraded (no ffmpeg, UPnP failed, …)
	LevelFail Level = "fail" // something the user must fix
)

// Check is one diagnostic result of GET /v1/doctor.
type Check struct {
	Name string `json:"name"`
	// OK is false only when Level is [LevelFail].
	OK     bool   `json:"ok"`
	Level  Level  `json:"level"`
	Detail string `json:"detail,omitempty"`
}

// DoctorResponse is the reply of GET /v1/doctor.
type DoctorResponse struct {
	Checks []Check `json:"checks"`
}

// errorBody is every error reply: a one-line message and a stable code.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}
