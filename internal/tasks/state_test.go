package tasks

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/token"
)

var t0 = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)

const testHash = "0123456789abcdef0123456789abcdef01234567"

func TestLoadState(t *testing.T) {
	good := state{Version: stateVersion, AgentID: "agent-1", Tasks: []Record{{ID: "t1", Source: testHash, InfoHash: testHash, FileIndex: -1, AddedAt: t0}},
		Tokens: []token.Record{{TaskID: "t1", EverGranted: true}}}
	dir := t.TempDir()
	if err := saveState(filepath.Join(dir, stateName), good); err != nil {
		t.Fatal(err)
	}
	goodBytes, err := os.ReadFile(filepath.Join(dir, stateName))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		content     []byte // nil: no state file
		wantMoved   bool
		wantAgent   string
		wantRecords []string // task IDs
	}{
		{"missing", nil, false, "", nil},
		{"good", goodBytes, false, "agent-1", []string{"t1"}},
		{"truncated", goodBytes[:len(goodBytes)/2], true, "", []string{testHash}},
		{"empty", []byte{}, true, "", []string{testHash}},
		{"whitespace", []byte("\n \n"), true, "", []string{testHash}},
		{"garbage", []byte("\x00\xffnot json"), true, "", []string{testHash}},
		{"wrong version", []byte(`{"version":99,"tasks":[]}`), true, "", []string{testHash}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// The engine's saved metainfo, from which a lost state is rebuilt.
			if err := os.MkdirAll(filepath.Join(dir, "torrents"), 0o700); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{testHash + ".torrent", "not-a-hash.torrent", strings.ToUpper(testHash[:40]) + "x.torrent"} {
				if err := os.WriteFile(filepath.Join(dir, "torrents", name), []byte("d4:infode"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.content != nil {
				if err := os.WriteFile(filepath.Join(dir, stateName), tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			stray := filepath.Join(dir, ".state-42.json")
			stray2 := filepath.Join(dir, ".state.json.123.tmp")
			for _, p := range []string{stray, stray2} {
				if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			ld, err := LoadState(dir, t0)
			if err != nil {
				t.Fatalf("LoadState() = %v", err)
			}
			if ld.RemovedTemps != 2 {
				t.Errorf("RemovedTemps = %d, want 2", ld.RemovedTemps)
			}
			for _, p := range []string{stray, stray2} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("stray temp file %s: stat = %v, want gone", filepath.Base(p), err)
				}
			}
			if got := ld.Recovery.MovedTo != ""; got != tc.wantMoved {
				t.Fatalf("Recovery = %+v, want moved=%v", ld.Recovery, tc.wantMoved)
			}
			if tc.wantMoved {
				if _, err := os.Stat(ld.Recovery.MovedTo); err != nil || !strings.HasPrefix(filepath.Base(ld.Recovery.MovedTo), "state.json.corrupt-") {
					t.Errorf("moved to %q: %v", ld.Recovery.MovedTo, err)
				}
				if _, err := os.Stat(filepath.Join(dir, stateName)); !os.IsNotExist(err) {
					t.Errorf("the corrupt state file is still in place")
				}
				if got := CorruptStateFiles(dir); len(got) != 1 {
					t.Errorf("CorruptStateFiles() = %v, want one", got)
				}
			}
			if ld.AgentID != tc.wantAgent {
				t.Errorf("AgentID = %q, want %q", ld.AgentID, tc.wantAgent)
			}
			var ids []string
			for _, r := range ld.Records {
				ids = append(ids, r.ID)
			}
			if !reflect.DeepEqual(ids, tc.wantRecords) {
				t.Errorf("records = %v, want %v", ids, tc.wantRecords)
			}
		})
	}
}

func TestReadAgentIDChangesNothing(t *testing.T) {
	dir := t.TempDir()
	if got := ReadAgentID(dir); got != "" {
		t.Errorf("ReadAgentID(no file) = %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, stateName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := ReadAgentID(dir); got != "" {
		t.Errorf("ReadAgentID(garbage) = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, stateName)); err != nil {
		t.Errorf("ReadAgentID moved or removed the state file: %v", err)
	}
}

func TestAddSource(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
		want string
	}{
		{"url with known hash", Record{Source: "https://example.org/a.torrent", InfoHash: testHash}, testHash},
		{"file with known hash", Record{Source: "/srv/a.torrent", InfoHash: testHash}, testHash},
		{"url never fetched", Record{Source: "https://example.org/a.torrent"}, "https://example.org/a.torrent"},
		{"magnet keeps its peers", Record{Source: "magnet:?xt=urn:btih:" + testHash + "&x.pe=127.0.0.1:1", InfoHash: testHash}, "magnet:?xt=urn:btih:" + testHash + "&x.pe=127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := addSource(tc.rec); got != tc.want {
				t.Errorf("addSource(%+v) = %q, want %q", tc.rec, got, tc.want)
			}
		})
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"version":1,"agentId":"a","tasks":[{"id":"t1","source":"` + testHash + `","fileIndex":-1,"addedAt":"2026-12-03T08:00:00Z"}],"tokens":[]}`))
	f.Add([]byte(`{"version":1`))
	f.Add([]byte(``))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseState(b)
		if err != nil {
			return
		}
		if st.Version != stateVersion {
			t.Fatalf("parseState accepted version %d", st.Version)
		}
		// What parses saves and parses back the same.
		dir := t.TempDir()
		p := filepath.Join(dir, stateName)
		if err := saveState(p, st); err != nil {
			t.Fatal(err)
		}
		b2, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := parseState(b2)
		if err != nil {
			t.Fatalf("a saved state does not parse: %v", err)
		}
		if len(st2.Tasks) != len(st.Tasks) || st2.AgentID != st.AgentID {
			t.Fatalf("round trip changed the state: %d tasks %q -> %d tasks %q", len(st.Tasks), st.AgentID, len(st2.Tasks), st2.AgentID)
		}
	})
}
