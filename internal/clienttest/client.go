package clienttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Client is a running third-party BitTorrent client.
type Client interface {
	// Name is the client's program name, e.g. "qbittorrent-nox".
	Name() string
	// PeerAddr is the client's BitTorrent listen address (TCP, and UDP for uTP).
	PeerAddr() netip.AddrPort
	// AddTorrent adds a .torrent file whose data is (to be) in dir: the client seeds what it
	// finds there after checking it, and downloads the rest.
	AddTorrent(t testing.TB, torrentPath, dir string)
	// AddMagnet adds a magnet link, downloading into dir.
	AddMagnet(t testing.TB, magnet, dir string)
	// Status reports the torrent with the given infohash (40 hex digits).
	Status(t testing.TB, infoHash string) Status
	// LogTail returns the end of the client's log, for failure messages.
	LogTail() string
}

// Status is a client's view of one torrent.
type Status struct {
	Known    bool    // the client has the torrent (with a magnet: possibly without metadata)
	Progress float64 // 0-1, of the wanted data, verified
	Seeding  bool    // checked, complete and uploading
	Err      string  // the client's error for the torrent, if any
}

// Options configures a client.
type Options struct {
	// UploadRateBytes limits the client's upload in bytes per second (also to peers on the
	// local network); 0 is unlimited. aria2c and qBittorrent keep whole KiB/s.
	UploadRateBytes int64
	// UTPOnly turns TCP off (qBittorrent only): peers reach the client over uTP alone.
	UTPOnly bool
	// OneConnectionPerIP keeps qBittorrent's default of one connection per IP address
	// (qBittorrent only). Without it the harness allows several: every peer in the namespace
	// is 127.0.0.1, and libtorrent bans an address that connects to itself, which a client
	// that learns its own address from a tracker does. Use it only where the client learns
	// no address from a tracker.
	OneConnectionPerIP bool
	// Encryption is the client's policy for BitTorrent protocol encryption (message stream
	// encryption); the zero value keeps the client's default. Each Start function reads the
	// setting back from the client and fails the test when it did not take, or when the
	// client has no such mode.
	Encryption Encryption
}

// Encryption is a client's protocol encryption policy.
type Encryption string

const (
	// EncryptionDefault keeps the client's own default: qBittorrent allows both kinds (and,
	// when a connection is encrypted, encrypts all of it with RC4); Transmission prefers
	// encrypted connections and accepts plain ones; aria2c dials and accepts both.
	EncryptionDefault Encryption = ""
	// EncryptionRequired refuses plain connections in and out, and plaintext payload after
	// an encrypted handshake: only RC4 connections. Every client has it: Transmission's
	// "encryption" 2 (it offers and selects only RC4 then), aria2c's --bt-require-crypto
	// with --bt-min-crypto-level=arc4, qBittorrent's encryption "forced" (libtorrent
	// pe_forced; qBittorrent allows only RC4 in any mode).
	EncryptionRequired Encryption = "required"
	// EncryptionDisabled refuses encrypted connections in and out (qBittorrent only:
	// encryption "disabled", libtorrent pe_disabled). Transmission and aria2c always accept
	// an encrypted handshake, so they fail the test when asked for it.
	EncryptionDisabled Encryption = "disabled"
)

// WaitSeeding waits until c seeds the torrent infoHash (checked and complete).
func WaitSeeding(t testing.TB, c Client, infoHash string, timeout time.Duration) {
	t.Helper()
	waitStatus(t, c, infoHash, timeout, "seeding", func(s Status) bool { return s.Seeding })
}

// WaitComplete waits until c has downloaded and verified all of torrent infoHash.
func WaitComplete(t testing.TB, c Client, infoHash string, timeout time.Duration) {
	t.Helper()
	waitStatus(t, c, infoHash, timeout, "complete", func(s Status) bool { return s.Progress >= 1 })
}

func waitStatus(t testing.TB, c Client, ih string, timeout time.Duration, what string, ok func(Status) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last Status
	for {
		last = c.Status(t, ih)
		if last.Err != "" {
			t.Fatalf("%s: torrent %s: %s\n%s", c.Name(), ih, last.Err, c.LogTail())
		}
		if ok(last) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: torrent %s not %s after %v (last status %+v)\n%s", c.Name(), ih, what, timeout, last, c.LogTail())
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: test ended waiting for torrent %s to be %s", c.Name(), ih, what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// proc is a client process owned by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // path of its log file
	done chan struct{}
}

// startProc starts a program whose output goes to logPath and stops it (SIGTERM, then
// SIGKILL after 5 s) when the test ends.
func startProc(t testing.TB, logPath string, name string, args ...string) *proc {
	t.Helper()
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = clientProcAttr() // sysproc_*.go
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// exited reports an error when the process has ended.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v", p.name, p.cmd.ProcessState)
	default:
		return nil
	}
}

// Pid returns the client's process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// LogTail returns the last few KiB of the process's log.
func (p *proc) LogTail() string { return tailFile(p.log, 4<<10) }

func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return fmt.Sprintf("--- %s (tail) ---\n%s", filepath.Base(path), b)
}

// FreePort returns a TCP port on 127.0.0.1 that is free for TCP and UDP at the time of the
// call and that no earlier call in this process returned (the kernel may hand a port that was
// just closed out again, and a client given the same port twice cannot bind its second use).
// Something else in the namespace, e.g. a connection's ephemeral port, may still take it
// before the client binds it: StartQBittorrent retries on fresh ports then.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			if !portsGiven[port] {
				portsGiven[port] = true
				return port
			}
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = make(map[int]bool) // guarded by portsMu
)

// waitHTTP waits until url answers (any status) or the process exits.
func waitHTTP(t testing.TB, p *proc, url string, timeout time.Duration) {
	t.Helper()
	if err := waitHTTPErr(p, url, timeout); err != nil {
		t.Fatal(err)
	}
}

// probeClient is waitHTTPErr's client: a port something else holds may accept and never
// answer.
var probeClient = &http.Client{Timeout: 2 * time.Second}

// errExited is wrapped by waitHTTPErr's error when the process ended before answering.
var errExited = errors.New("exited")

// waitHTTPErr is waitHTTP returning the failure instead of ending the test.
func waitHTTPErr(p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := probeClient.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if perr := p.exited(); perr != nil {
			return fmt.Errorf("%w: %v before answering %s\n%s", errExited, perr, redactURL(url), p.LogTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer on %s within %v: %v\n%s", p.name, redactURL(url), timeout, err, p.LogTail())
		}
		time.Sleep(50 * time.Millisecond) // polling a port that is not open yet; nothing to await
	}
}

func redactURL(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// postJSON posts v as JSON and decodes the reply into out (when non-nil).
func postJSON(hc *http.Client, url string, hdr http.Header, v, out any) (*http.Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, fmt.Errorf("%s: %s: %s", redactURL(url), resp.Status, bytes.TrimSpace(body))
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp, fmt.Errorf("%s: decode reply: %w", redactURL(url), err)
		}
	}
	return resp, nil
}

func loopback(port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
}
