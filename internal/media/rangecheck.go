package media

import (
	"net/textproto"
	"strconv"
	"strings"
)

// readSpan returns the file bytes [start, end) http.ServeContent will read for a GET of a
// file of size bytes with these Range and If-Range headers, or -1, -1 when it will read none
// (an empty file, or a range it answers with 416). It runs after dropMultiRange, so at most
// one range is left. It does not serve anything: ServeContent still does all of Range; this
// only lets the handler refuse, before any 206 header, a read that cannot be satisfied, and
// tell the torrent reader where the read ends.
func readSpan(rangeHdr, ifRange, etag string, size int64) (start, end int64) {
	if size <= 0 {
		return -1, -1
	}
	if rangeHdr == "" || ifRange != "" && ifRange != etag {
		// No range, or If-Range does not match (a date never matches: no Last-Modified):
		// the whole file.
		return 0, size
	}
	spec, ok := strings.CutPrefix(rangeHdr, "bytes=")
	if !ok {
		return -1, -1
	}
	spec = textproto.TrimString(spec)
	if spec == "" {
		return 0, size // no range at all: the whole file
	}
	startStr, endStr, ok := strings.Cut(spec, "-")
	if !ok {
		return -1, -1
	}
	startStr, endStr = textproto.TrimString(startStr), textproto.TrimString(endStr)
	if startStr == "" {
		if endStr == "" || endStr[0] == '-' {
			return -1, -1
		}
		n, err := strconv.ParseInt(endStr, 10, 64)
		if err != nil || n <= 0 {
			return -1, -1
		}
		return max(0, size-n), size
	}
	start, err := strconv.ParseInt(startStr, 10, 64)
	if err != nil || start < 0 || start >= size {
		return -1, -1
	}
	end = size
	if endStr != "" {
		last, err := strconv.ParseInt(endStr, 10, 64)
		if err != nil || start > last {
			return -1, -1
		}
		end = min(last+1, size)
	}
	return start, end
}
