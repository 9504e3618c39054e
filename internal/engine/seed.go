package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/google/uuid"
)

// SeedInfo describes a torrent made and seeded by [Engine.Seed].
type SeedInfo struct {
	// Magnet has xt, dn and x.pe=<Peer>, so a client can fetch it from this engine directly.
	Magnet   string
	InfoHash string
	// Peer is the address put in x.pe: ListenHost when it is a specific address, else
	// Options.AdvertiseAddr, else 127.0.0.1; with the engine's listen port.
	Peer netip.AddrPort
	// TaskID is the seeding task; Remove stops seeding (and never deletes the files).
	TaskID string
}

// SeedOptions tunes [Engine.SeedWith].
type SeedOptions struct {
	// PieceLength forces the piece length (a power of two, at least 16 KiB); 0 chooses one
	// giving about 1000-2000 pieces, between 64 KiB and 16 MiB.
	PieceLength int64
}

// Seed makes a torrent of a file or directory and seeds it from where it is (nothing is
// copied or written). Seeding the same content again returns the existing seed.
func (e *Engine) Seed(ctx context.Context, path string) (SeedInfo, error) {
	return e.SeedWith(ctx, path, SeedOptions{})
}

// SeedWith is [Engine.Seed] with options.
func (e *Engine) SeedWith(ctx context.Context, path string, opts SeedOptions) (SeedInfo, error) {
	pl := opts.PieceLength
	if pl != 0 && (pl < 16<<10 || pl > maxPieceLength || pl&(pl-1) != 0) {
		return SeedInfo{}, fmt.Errorf("seed: piece length %d: want a power of two from 16 KiB to 256 MiB", pl)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return SeedInfo{}, fmt.Errorf("seed %s: %w", path, err)
	}
	info, err := buildInfo(ctx, abs, pl)
	if err != nil {
		return SeedInfo{}, fmt.Errorf("seed %s: %w", path, err)
	}
	infoBytes, err := bencode.Marshal(info)
	if err != nil {
		return SeedInfo{}, fmt.Errorf("seed %s: encode info: %w", path, err)
	}
	ih := metainfo.HashBytes(infoBytes)
	key := ih.HexString()
	// The layout must be the files' real names, or the storage would look elsewhere.
	lay := buildLayout(info, key)
	for i, fi := range info.UpvertedFiles() {
		want := info.Name
		if info.IsDir() {
			want = strings.Join(append([]string{info.Name}, fi.Path...), "/")
		}
		if lay.paths[i] != want {
			return SeedInfo{}, fmt.Errorf("seed %s: %w: file name %q cannot be shared safely", path, ErrUnsafePath, want)
		}
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return SeedInfo{}, ErrClosed
	}
	if t, ok := e.byKey[key]; ok {
		if !t.seeded {
			return SeedInfo{}, fmt.Errorf("seed %s: %w", path, &ExistsError{TaskID: t.id, InfoHash: key})
		}
		return e.seedInfo(t, info.Name), nil
	}
	// We just hashed every piece: record them complete instead of hashing them again.
	for i := range info.NumPieces() {
		if err := e.completion.Set(pieceKey(key, i), true); err != nil {
			return SeedInfo{}, fmt.Errorf("seed %s: record piece completion: %w", path, err)
		}
	}
	t := newTask(e, uuid.NewString(), key, AddSpec{FileIndex: -1, Title: info.Name}, filepath.Dir(abs), true)
	t.dlAllowed = false
	tor, isNew := e.cl.AddTorrentOpt(torrent.AddTorrentOpts{
		InfoHash:  ih,
		InfoBytes: infoBytes,
		Storage:   t.newStorage(),
		// Never write into the user's files, even if one changed under us.
		DisallowDataDownload: true,
	})
	if !isNew {
		return SeedInfo{}, fmt.Errorf("seed %s: %w: infohash %s is already in the client", path, ErrExists, key)
	}
	t.tor = tor
	if !e.opts.DisableTrackers && len(e.opts.Trackers) > 0 {
		tor.AddTrackers([][]string{e.opts.Trackers})
	}
	e.tasks[t.id] = t
	e.byKey[key] = t
	e.order = append(e.order, t)
	t.onInfo(&metainfo.MetaInfo{InfoBytes: infoBytes})
	si := e.seedInfo(t, info.Name)
	e.log.Info("seeding", "task", t.id, "infohash", key, "path", abs, "pieces", info.NumPieces(), "piece_length", info.PieceLength)
	return si, nil
}

func (e *Engine) seedInfo(t *Task, name string) SeedInfo {
	peer := netip.AddrPortFrom(e.advertiseAddr(), e.listen.Port())
	m := metainfo.Magnet{DisplayName: name, Params: map[string][]string{"x.pe": {peer.String()}}}
	_ = m.InfoHash.FromHexString(t.key)
	if !e.opts.DisableTrackers {
		m.Trackers = e.opts.Trackers
	}
	return SeedInfo{Magnet: m.String(), InfoHash: t.key, Peer: peer, TaskID: t.id}
}

// advertiseAddr returns the address peers should dial for this engine.
func (e *Engine) advertiseAddr() netip.Addr {
	if a := e.listen.Addr(); !a.IsUnspecified() {
		return a
	}
	if e.opts.AdvertiseAddr.IsValid() {
		return e.opts.AdvertiseAddr.Unmap()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// buildInfo makes the info dictionary of a file or directory: regular files only (symlinks
// and special files are skipped), sorted by path, hashed with pieceLength (0 = choose).
func buildInfo(ctx context.Context, root string, pieceLength int64) (*metainfo.Info, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(root)
	if name == "." || name == ".." || name == string(filepath.Separator) {
		return nil, fmt.Errorf("%w: cannot name a torrent after %q", ErrUnsafePath, root)
	}
	info := &metainfo.Info{Name: name}
	var paths []string // OS paths, in torrent order
	if st.Mode().IsRegular() {
		info.Length = st.Size()
		paths = []string{root}
	} else if st.IsDir() {
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			info.Files = append(info.Files, metainfo.FileInfo{
				Path:   strings.Split(filepath.ToSlash(rel), "/"),
				Length: fi.Size(),
			})
			return nil
		})
		if err != nil {
			return nil, err
		}
		slices.SortFunc(info.Files, func(a, b metainfo.FileInfo) int {
			return strings.Compare(strings.Join(a.Path, "/"), strings.Join(b.Path, "/"))
		})
		for _, f := range info.Files {
			paths = append(paths, filepath.Join(append([]string{root}, f.Path...)...))
		}
	} else {
		return nil, fmt.Errorf("%s is neither a regular file nor a directory", root)
	}
	total := info.TotalLength()
	if total == 0 {
		return nil, errors.New("nothing to seed: no data")
	}
	if pieceLength == 0 {
		pieceLength = min(max(metainfo.ChoosePieceLength(total), 64<<10), 16<<20)
	}
	info.PieceLength = pieceLength
	r := &filesReader{ctx: ctx, paths: paths}
	defer r.close()
	info.Pieces, err = metainfo.GeneratePieces(r, pieceLength, nil)
	if err != nil {
		return nil, fmt.Errorf("hash pieces: %w", err)
	}
	if int64(info.NumPieces()) != (total+pieceLength-1)/pieceLength {
		return nil, errors.New("files changed while hashing")
	}
	return info, nil
}

// filesReader reads files one after another, checking ctx between reads.
type filesReader struct {
	ctx   context.Context
	paths []string
	cur   *os.File
}

func (r *filesReader) Read(p []byte) (int, error) {
	for {
		if err := r.ctx.Err(); err != nil {
			return 0, err
		}
		if r.cur == nil {
			if len(r.paths) == 0 {
				return 0, io.EOF
			}
			f, err := os.Open(r.paths[0])
			if err != nil {
				return 0, err
			}
			r.cur, r.paths = f, r.paths[1:]
		}
		n, err := r.cur.Read(p)
		if errors.Is(err, io.EOF) {
			r.cur.Close()
			r.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (r *filesReader) close() {
	if r.cur != nil {
		r.cur.Close()
	}
}
