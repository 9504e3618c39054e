package enginetest

import "testing"

// WriteTorrentFileAnnounce is [WriteTorrentFile] with an announce URL in the .torrent, so a
// client that seeds it announces to that tracker. The infohash does not depend on announce.
func WriteTorrentFileAnnounce(t testing.TB, dir, dataPath string, pieceLength int64, announce string) (torrentPath, infoHash string) {
	t.Helper()
	info := buildInfo(t, dataPath, pieceLength)
	return writeMetaInfo(t, dir, &info, announce)
}
