package origin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/logtest"
)

// tok returns a distinct, well-formed 64-char hex token for test n.
func tok(n string) string {
	sum := sha256.Sum256([]byte("token-" + n))
	return hex.EncodeToString(sum[:])
}

func intp(i int) *int           { return &i }
func floatp(f float64) *float64 { return &f }

var exp1 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestValidToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{tok("a"), true},
		{strings.Repeat("A", 32), true},
		{strings.Repeat("z", 128), true},
		{"abc-_.~" + strings.Repeat("0", 25), true},
		{strings.Repeat("a", 31), false},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("a", 31) + "/", false},
		{strings.Repeat("a", 31) + " ", false},
		{strings.Repeat("a", 31) + "é", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := ValidToken(tc.in); got != tc.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestValidSessionID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"0b6f7c52-2d1e-4bb1-9a59-1f2b3c4d5e6f", true},
		{"a", true},
		{"A_b-9", true},
		{strings.Repeat("s", 128), true},
		{strings.Repeat("s", 129), false},
		{"", false},
		{"a/b", false},
		{"a.b", false},
		{"../x", false},
	}
	for _, tc := range tests {
		if got := ValidSessionID(tc.in); got != tc.want {
			t.Errorf("ValidSessionID(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestStreamURLs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   StreamURLs
		want string
	}{
		{"empty", StreamURLs{}, ""},
		{"lan only", StreamURLs{LAN: "http://192.168.1.5:11818/stream?id=t1&t=x"}, `{"lan":"http://192.168.1.5:11818/stream?id=t1\u0026t=x"}`},
		{"all", StreamURLs{LAN: "http://a/s", TS: "http://b/s", Pub: "https://c/s"}, `{"lan":"http://a/s","ts":"http://b/s","pub":"https://c/s"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.Encode()
			if got != tc.want {
				t.Errorf("%+v.Encode() = %s, want %s", tc.in, got, tc.want)
			}
			back, err := ParseStreamURLs(got)
			if err != nil || back != tc.in {
				t.Errorf("ParseStreamURLs(%s) = %+v, %v, want %+v", got, back, err, tc.in)
			}
		})
	}
	// On the wire the object travels as a JSON string inside TaskState.
	b, err := json.Marshal(TaskState{TaskID: "t1", StreamURL: StreamURLs{LAN: "http://a/s"}.Encode()})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"streamUrl":"{\"lan\":\"http://a/s\"}"`; !strings.Contains(string(b), want) {
		t.Errorf("json.Marshal(TaskState) = %s, want it to contain %s", b, want)
	}
	if _, err := ParseStreamURLs(`{"lan":`); err == nil {
		t.Errorf("ParseStreamURLs(truncated) = nil error, want error")
	}
}

// syncCases are shared by the decode table and the fuzz seed corpus.
var syncCases = []struct {
	name  string
	body  string
	want  SyncReply
	fail  bool
	warns int // "skipped"/"ignored" log lines expected
}{
	{name: "empty object", body: `{}`},
	{name: "null fields", body: `{"newTasks":null,"controls":null,"streamRequests":null,"streamSessions":null,"watching":null}`},
	{name: "watching", body: `{"watching":true}`, want: SyncReply{Watching: true}},
	{name: "unknown fields ignored", body: `{"upgrade":{"version":"9"},"newTasks":[{"id":"t1","infoHash":"` + strings.Repeat("a", 40) + `","extra":[1,2,{"x":null}]}],"scan":true}`,
		want: SyncReply{NewTasks: []NewTask{{ID: "t1", InfoHash: strings.Repeat("a", 40), Mode: ModeDownload}}}},
	{name: "full", body: `{
		"newTasks":[{"id":"t1","infoHash":"` + strings.Repeat("ab", 20) + `","title":"Movie","mode":"stream","magnet":"magnet:?xt=urn:btih:abc","torrentUrl":"https://x/t.torrent","fileIndex":2,"streamToken":"` + tok("1") + `","streamTokenExpiresAt":"2030-01-02T03:04:05Z"}],
		"controls":[{"action":"cancel","taskId":"t2","deleteFiles":true},{"action":"stream","taskId":"t3","streamToken":"` + tok("3") + `","streamTokenExpiresAt":null}],
		"streamRequests":[{"taskId":"t4","streamToken":"` + tok("4") + `","streamTokenExpiresAt":""}],
		"streamSessions":[{"sessionId":"s-1","taskId":"t5","fileIndex":0,"startSec":12.5,"streamToken":"` + tok("5") + `"}],
		"watching":false}`,
		want: SyncReply{
			NewTasks: []NewTask{{ID: "t1", InfoHash: strings.Repeat("ab", 20), Title: "Movie", Mode: ModeStream, Magnet: "magnet:?xt=urn:btih:abc",
				TorrentURL: "https://x/t.torrent", FileIndex: intp(2), StreamToken: tok("1"), StreamTokenExpiresAt: exp1}},
			Controls:       []Control{{Action: ActionCancel, TaskID: "t2", DeleteFiles: true}, {Action: ActionStream, TaskID: "t3", StreamToken: tok("3")}},
			StreamRequests: []StreamRequest{{TaskID: "t4", StreamToken: tok("4")}},
			StreamSessions: []StreamSession{{SessionID: "s-1", TaskID: "t5", FileIndex: intp(0), StartSec: floatp(12.5), StreamToken: tok("5")}},
		}},
	{name: "malformed entries skipped, others kept", body: `{"newTasks":[
		{"id":"good1","magnet":"magnet:?xt=urn:btih:a"},
		{"id":"bad-type","magnet":"m","fileIndex":"2"},
		{"magnet":"no id"},
		{"id":"no-source"},
		{"id":"bad-mode","magnet":"m","mode":"upload"},
		{"id":"bad-token","magnet":"m","streamToken":"short"},
		{"id":"bad-exp","magnet":"m","streamToken":"` + tok("x") + `","streamTokenExpiresAt":"tomorrow"},
		{"id":"exp-no-token","magnet":"m","streamTokenExpiresAt":"2030-01-02T03:04:05Z"},
		{"id":"neg-index","magnet":"m","fileIndex":-1},
		"a string",
		42,
		null,
		[1],
		{"id":"good2","torrentUrl":"https://x/t.torrent"}]}`,
		want:  SyncReply{NewTasks: []NewTask{{ID: "good1", Magnet: "magnet:?xt=urn:btih:a", Mode: ModeDownload}, {ID: "good2", TorrentURL: "https://x/t.torrent", Mode: ModeDownload}}},
		warns: 12},
	{name: "bad controls", body: `{"controls":[{"action":"explode","taskId":"t"},{"action":"pause"},{"action":"pause","taskId":"t\u0000"},{"action":"resume","taskId":"t9"}]}`,
		want: SyncReply{Controls: []Control{{Action: ActionResume, TaskID: "t9"}}}, warns: 3},
	{name: "bad sessions", body: `{"streamSessions":[{"sessionId":"../etc","taskId":"t"},{"sessionId":"s","taskId":"t","startSec":-1},{"sessionId":"s","taskId":"t","fileIndex":1.5},{"sessionId":"s2","taskId":"t"}]}`,
		want: SyncReply{StreamSessions: []StreamSession{{SessionID: "s2", TaskID: "t"}}}, warns: 3},
	{name: "field of wrong type", body: `{"newTasks":"nope","controls":{"a":1},"streamRequests":[{"taskId":"t1"}],"watching":"yes"}`,
		want: SyncReply{StreamRequests: []StreamRequest{{TaskID: "t1"}}}, warns: 3},
	{name: "not an object", body: `[]`, fail: true},
	{name: "number", body: `42`, fail: true},
	{name: "null", body: `null`, fail: true},
	{name: "truncated", body: `{"newTasks":[{"id":"t1"`, fail: true},
	{name: "garbage", body: `<html>oops</html>`, fail: true},
	{name: "empty body", body: ``},
	{name: "blank body", body: " \n"},
}

// logBuffer collects log output; safe for concurrent use.
type logBuffer struct{ logtest.Buffer }

func newLogBuffer() *logBuffer { return &logBuffer{} }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestDecodeSyncReply(t *testing.T) {
	t.Parallel()
	for _, tc := range syncCases {
		t.Run(tc.name, func(t *testing.T) {
			logs := newLogBuffer()
			got, err := DecodeSyncReply(logs.logger(), []byte(tc.body))
			if (err != nil) != tc.fail {
				t.Fatalf("DecodeSyncReply() error = %v, want failure %v", err, tc.fail)
			}
			got.Rejected = nil // TestSyncReplyRejected checks it
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DecodeSyncReply() =\n%+v\nwant\n%+v", got, tc.want)
			}
			if n := strings.Count(logs.String(), "origin reply "); n != tc.warns {
				t.Errorf("log lines = %d, want %d:\n%s", n, tc.warns, logs.String())
			}
			for _, secret := range []string{tok("x"), "short"} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("log contains entry content %q:\n%s", secret, logs.String())
				}
			}
		})
	}
}

func TestDecodeSyncReplyLogsIndexAndKind(t *testing.T) {
	t.Parallel()
	logs := newLogBuffer()
	_, err := DecodeSyncReply(logs.logger(), []byte(`{"newTasks":[{"id":"a","magnet":"m"},{"id":"b","magnet":"m","fileIndex":"`+tok("leak")+`"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{"field=newTasks", "index=1", "wrong type for field fileIndex (want int)"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q does not contain %q", out, want)
		}
	}
	if strings.Contains(out, tok("leak")) {
		t.Errorf("log contains the offending value: %s", out)
	}
}

func TestDecodeStatusReply(t *testing.T) {
	t.Parallel()
	updates := []StatusUpdate{{TaskID: "a"}, {TaskID: "b"}, {TaskID: "c"}}
	tests := []struct {
		name  string
		body  string
		want  StatusReply
		fail  bool
		warns int
	}{
		{name: "empty", body: `{}`},
		{name: "results by position", body: `{"results":[{"cancelled":true,"deleteFiles":true},{},{"streamRequested":true,"streamToken":"` + tok("s") + `","streamTokenExpiresAt":"2030-01-02T03:04:05Z"}],"watching":true}`,
			want: StatusReply{Results: []StatusResult{
				{TaskID: "a", Cancelled: true, DeleteFiles: true},
				{TaskID: "c", StreamRequested: true, StreamToken: tok("s"), StreamTokenExpiresAt: exp1},
			}, Watching: new(true)}},
		{name: "origin taskId ignored", body: `{"results":[{"taskId":"zzz","paused":true}]}`,
			want: StatusReply{Results: []StatusResult{{TaskID: "a", Paused: true}}}},
		{name: "extra results dropped", body: `{"results":[{},{},{},{"paused":true}],"watching":false}`, want: StatusReply{Watching: new(false)}, warns: 1},
		{name: "malformed result skipped", body: `{"results":[{"paused":"yes"},{"streamToken":"bad"},{"cancelled":true}]}`,
			want: StatusReply{Results: []StatusResult{{TaskID: "c", Cancelled: true}}}, warns: 2},
		{name: "results wrong type", body: `{"results":{"a":1},"watching":1}`, warns: 2},
		{name: "not an object", body: `"ok"`, fail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := newLogBuffer()
			got, err := DecodeStatusReply(logs.logger(), []byte(tc.body), updates)
			if (err != nil) != tc.fail {
				t.Fatalf("DecodeStatusReply() error = %v, want failure %v", err, tc.fail)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DecodeStatusReply() = %+v, want %+v", got, tc.want)
			}
			if n := strings.Count(logs.String(), "origin "); n != tc.warns {
				t.Errorf("log lines = %d, want %d:\n%s", n, tc.warns, logs.String())
			}
		})
	}
}

func TestLogValuesHideTokens(t *testing.T) {
	t.Parallel()
	logs := newLogBuffer()
	log := logs.logger()
	secret := tok("hidden")
	log.Info("x",
		"new", NewTask{ID: "t", StreamToken: secret},
		"control", Control{TaskID: "t", StreamToken: secret},
		"req", StreamRequest{TaskID: "t", StreamToken: secret},
		"session", StreamSession{SessionID: "s", StreamToken: secret},
		"result", StatusResult{TaskID: "t", StreamToken: secret},
		"state", TaskState{TaskID: "t", StreamURL: StreamURLs{LAN: "http://a/stream?id=t&t=" + secret}.Encode()},
	)
	if out := logs.String(); strings.Contains(out, secret) || !strings.Contains(out, "has_token=true") {
		t.Errorf("log output leaks or lacks token presence: %s", out)
	}
}

// normalizeTimes makes times comparable with reflect.DeepEqual after a
// JSON round trip (the location pointer may differ).
func normalizeTimes(r *SyncReply) {
	for i := range r.NewTasks {
		r.NewTasks[i].StreamTokenExpiresAt = r.NewTasks[i].StreamTokenExpiresAt.UTC()
	}
	for i := range r.Controls {
		r.Controls[i].StreamTokenExpiresAt = r.Controls[i].StreamTokenExpiresAt.UTC()
	}
	for i := range r.StreamRequests {
		r.StreamRequests[i].StreamTokenExpiresAt = r.StreamRequests[i].StreamTokenExpiresAt.UTC()
	}
	for i := range r.StreamSessions {
		r.StreamSessions[i].StreamTokenExpiresAt = r.StreamSessions[i].StreamTokenExpiresAt.UTC()
	}
}

func FuzzDecodeSyncReply(f *testing.F) {
	for _, tc := range syncCases {
		f.Add([]byte(tc.body))
	}
	f.Add(bytes.Repeat([]byte("["), 10000))
	f.Add([]byte(`{"newTasks":[` + strings.Repeat(`{"id":"x","magnet":"m"},`, 50) + `{}]}`))
	discard := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeSyncReply(discard, data)
		if err != nil {
			if !r.Empty() || r.Watching {
				t.Fatalf("DecodeSyncReply failed with a non-empty reply: %+v", r)
			}
			return
		}
		// Every entry that came out is valid.
		for _, e := range r.NewTasks {
			if err := e.validate(); err != nil {
				t.Fatalf("invalid new task passed: %v", err)
			}
		}
		for _, e := range r.Controls {
			if err := e.validate(); err != nil {
				t.Fatalf("invalid control passed: %v", err)
			}
		}
		for _, e := range r.StreamRequests {
			if err := e.validate(); err != nil {
				t.Fatalf("invalid stream request passed: %v", err)
			}
		}
		for _, e := range r.StreamSessions {
			if err := e.validate(); err != nil {
				t.Fatalf("invalid stream session passed: %v", err)
			}
		}
		// Round trip: what we decoded encodes and decodes to the same.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("json.Marshal(decoded) = %v", err)
		}
		back, err := DecodeSyncReply(discard, b)
		if err != nil {
			t.Fatalf("DecodeSyncReply(re-encoded) = %v", err)
		}
		normalizeTimes(&r)
		normalizeTimes(&back)
		r.Rejected = nil // not on the wire
		if !reflect.DeepEqual(r, back) {
			t.Fatalf("round trip differs:\n%+v\n%+v", r, back)
		}
		// The status decoder shares the entry machinery; it must not panic.
		_, _ = DecodeStatusReply(discard, data, []StatusUpdate{{TaskID: "a"}})
	})
}

// The track languages of a streamSessions entry reach the daemon.
func TestStreamSessionLanguages(t *testing.T) {
	var s StreamSession
	in := `{"sessionId":"s1","taskId":"a","audioLanguage":"spa","subtitleLanguage":"en-GB"}`
	if err := json.Unmarshal([]byte(in), &s); err != nil {
		t.Fatalf("Unmarshal(%s) = %v", in, err)
	}
	if s.AudioLanguage != "spa" || s.SubtitleLanguage != "en-GB" {
		t.Errorf("Unmarshal(%s) = %+v, want audio spa, subtitles en-GB", in, s)
	}
}
