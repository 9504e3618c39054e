package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a Unix socket can be bound to on Linux
// (sun_path is 108 bytes including the terminating NUL).
const maxSocketPath = 107

// probeTimeout bounds the connect that tells a live daemon from a stale
// socket file. The kernel completes a Unix connect from its backlog, so a
// live daemon answers at once even when busy.
const probeTimeout = time.Second

// Listen creates the control socket at path with mode 0600 and returns its
// listener. The socket is bound in a fresh 0700 directory, chmodded, and only
// then linked into place, so there is no moment when another user could
// connect, whatever the umask. A stale socket (nothing answers) is removed;
// when a daemon answers, Listen returns an error wrapping [ErrAlreadyRunning].
// Closing the listener removes the socket file if it is still this one.
func Listen(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket %s: path is %d bytes, longer than the %d a unix socket allows (choose a shorter torrent.data_dir)", path, len(path), maxSocketPath)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}

	tmpDir, err := os.MkdirTemp(dir, ".ctl")
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	if len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("control socket %s: directory path too long for a unix socket (choose a shorter torrent.data_dir)", path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	// The file is removed under its final name, by socketListener.Close.
	ln.SetUnlinkOnClose(false)
	fi, err := publish(tmp, path)
	if err != nil {
		return nil, errors.Join(err, ln.Close())
	}
	return &socketListener{UnixListener: ln, path: path, file: fi}, nil
}

// publish sets tmp's mode to 0600 and hard-links it to path. link(2) fails
// when path exists, so two daemons starting at once cannot both win.
func publish(tmp, path string) (fs.FileInfo, error) {
	if err := os.Chmod(tmp, 0o600); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	for attempt := 0; ; attempt++ {
		err := os.Link(tmp, path)
		if err == nil {
			return fi, nil
		}
		if !errors.Is(err, fs.ErrExist) || attempt > 0 {
			return nil, fmt.Errorf("control socket %s: %w", path, err)
		}
		// Someone created path since removeStale: look again, once.
		if err := removeStale(path); err != nil {
			return nil, err
		}
	}
}

// removeStale removes path if it is a socket nobody answers on. It returns
// an error wrapping [ErrAlreadyRunning] if a daemon answers, and refuses to
// remove anything that is not a socket.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: file exists and is not a socket", path)
	}
	conn, err := net.DialTimeout("unix", path, probeTimeout)
	if err == nil {
		_ = conn.Close() // only a probe
		return fmt.Errorf("control socket %s: %w", path, ErrAlreadyRunning)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale control socket: %w", err)
	}
	return nil
}

// socketListener is a Unix listener that reports, and on Close removes, the
// socket's published path instead of the temporary one it was bound to.
type socketListener struct {
	*net.UnixListener
	path string
	file fs.FileInfo // the socket inode, to avoid removing a successor's

	once     sync.Once
	closeErr error
}

func (l *socketListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *socketListener) Close() error {
	l.once.Do(func() {
		err := l.UnixListener.Close()
		if cur, serr := os.Lstat(l.path); serr == nil && os.SameFile(cur, l.file) {
			if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("remove control socket: %w", rerr))
			}
		}
		l.closeErr = err
	})
	return l.closeErr
}
