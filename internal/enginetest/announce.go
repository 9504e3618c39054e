package enginetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// WriteTorrentFileAnnounce is [WriteTorrentFile] with an announce URL in the .torrent, so a
// client that seeds it announces to that tracker. The infohash does not depend on announce.
func WriteTorrentFileAnnounce(t testing.TB, dir, dataPath string, pieceLength int64, announce string) (torrentPath, infoHash string) {
	t.Helper()
	info := metainfo.Info{PieceLength: pieceLength}
	if err := info.BuildFromFilePath(dataPath); err != nil {
		t.Fatalf("build torrent of %s: %v", dataPath, err)
	}
	b, err := bencode.Marshal(info)
	if err != nil {
		t.Fatalf("encode info: %v", err)
	}
	mi := metainfo.MetaInfo{InfoBytes: b, Announce: announce}
	infoHash = mi.HashInfoBytes().HexString()
	torrentPath = filepath.Join(dir, infoHash+".torrent")
	f, err := os.Create(torrentPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := mi.Write(f); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return torrentPath, infoHash
}
