package pull

import (
	"net/http"
	"strings"

	"github.com/quasipaa/quasipaa/internal/streampath"
)

// HLSHandler serves the HLS files of a stream; the exchange role's HLS
// packager implements it.
type HLSHandler interface {
	// ServeHLS answers a request for file (the last URL segment) of the stream at path.
	ServeHLS(w http.ResponseWriter, r *http.Request, path, file string)
}

// hlsExtensions are the file types an HLS URL may end with.
var hlsExtensions = []string{".m3u8", ".mp4", ".ts", ".m4s"}

// WithHLS routes GET and HEAD /{app}/{stream}/{file} with an HLS file
// extension to Options.HLS and everything else to next. It is a wrapper rather
// than a mux pattern because a three-segment wildcard pattern would conflict
// with the API's /api/v1/ catch-all.
func (s *Server) WithHLS(next http.Handler) http.Handler {
	if s.opts.HLS == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app, name, file, ok := splitHLSPath(r.URL.Path)
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			next.ServeHTTP(w, r)
			return
		}
		path, err := streampath.Join(app, name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.opts.HLS.ServeHLS(w, r, path, file)
	})
}

// splitHLSPath splits "/app/stream/file.ext" when file has an HLS extension.
func splitHLSPath(p string) (app, name, file string, ok bool) {
	parts := strings.Split(p, "/")
	if len(parts) != 4 || parts[0] != "" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return "", "", "", false
	}
	for _, ext := range hlsExtensions {
		if strings.HasSuffix(parts[3], ext) {
			return parts[1], parts[2], parts[3], true
		}
	}
	return "", "", "", false
}
