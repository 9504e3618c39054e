package media

import (
	"net/http"
	"strings"
)

// canonicalPaths answers every request whose path is not canonical with the
// standard 404, before the mux sees it. http.ServeMux would answer "//stream",
// "/./stream" or "/a/../stream" with a redirect whose Location copies the
// query, and so the token, into a header a proxy or a browser history keeps.
func canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !canonicalPath(r.URL.EscapedPath()) {
			writeNotFound(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// canonicalPath reports whether p, a request path as sent (still
// percent-encoded), is one the mux routes as is: it starts with "/", has no
// empty, "." or ".." segment, and no percent-encoding at all (no route needs
// it, and an encoded "." or "/" would be a way around the rest). "/" alone is
// canonical.
func canonicalPath(p string) bool {
	if p == "/" {
		return true
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, '%') {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		switch seg {
		case "", ".", "..":
			return false
		}
	}
	return true
}
