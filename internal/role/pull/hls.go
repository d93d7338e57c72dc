package pull

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/quasipaa/quasipaa/internal/auth"
	"github.com/quasipaa/quasipaa/internal/hub"
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

// HLSGate authorises HLS requests; *auth.Admitter implements it.
type HLSGate interface {
	// AdmitHLS decides the request for file of the stream at path and
	// returns the token to add to every URI of a served playlist ("" for none).
	AdmitHLS(ctx context.Context, path, file string, info hub.ClientInfo) (string, error)
}

// maxPlaylistSize bounds a playlist held in memory to add the token to its URIs.
const maxPlaylistSize = 4 << 20

// WithHLSGate asks gate about every GET and HEAD of an HLS file
// (/{app}/{stream}/{file}) before next (WithHLS) serves it, answering a
// refusal with its status (401, 403, 429 or 503) and a plain-text reason.
// When the gate returns a token, a served playlist has it added to the
// query of each of its URIs (segments, parts, init sections, preload hints,
// rendition reports, media playlists), so that a player following them is
// admitted too. Other requests go to next untouched.
func WithHLSGate(next http.Handler, gate HLSGate) http.Handler {
	if gate == nil {
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
			next.ServeHTTP(w, r) // WithHLS answers 400
			return
		}
		token, err := gate.AdmitHLS(r.Context(), path, file, hub.ClientInfo{Protocol: "hls", RemoteAddr: r.RemoteAddr, Query: r.URL.RawQuery})
		if err != nil {
			status, _ := auth.HTTPStatus(err)
			if status == 0 {
				status = http.StatusServiceUnavailable
			}
			http.Error(w, "cannot play "+path+": "+err.Error(), status)
			return
		}
		if token == "" || !strings.HasSuffix(file, ".m3u8") {
			next.ServeHTTP(w, r)
			return
		}
		buf := &playlistBuffer{header: w.Header()}
		next.ServeHTTP(buf, r)
		body := buf.body.Bytes()
		if buf.status == 0 || buf.status == http.StatusOK {
			body = AddTokenToPlaylist(body, token)
		}
		if buf.overflow {
			http.Error(w, "playlist too large", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if buf.status != 0 {
			w.WriteHeader(buf.status)
		}
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	})
}

// playlistBuffer holds a playlist response to rewrite it before sending.
type playlistBuffer struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	overflow bool
}

func (b *playlistBuffer) Header() http.Header { return b.header }

func (b *playlistBuffer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *playlistBuffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.body.Len()+len(p) > maxPlaylistSize {
		b.overflow = true
		return len(p), nil
	}
	return b.body.Write(p)
}

// AddTokenToPlaylist returns the playlist pl with "token=…" added to the
// query of every URI: the URI lines and every URI="…" attribute of its tags.
func AddTokenToPlaylist(pl []byte, token string) []byte {
	param := "token=" + url.QueryEscape(token)
	lines := strings.SplitAfter(string(pl), "\n")
	var out strings.Builder
	out.Grow(len(pl) + 64*len(lines))
	for _, line := range lines {
		text := strings.TrimRight(line, "\r\n")
		end := line[len(text):]
		switch {
		case text == "":
		case strings.HasPrefix(text, "#"):
			text = addTokenToAttributes(text, param)
		default:
			text = addQuery(text, param)
		}
		out.WriteString(text)
		out.WriteString(end)
	}
	return []byte(out.String())
}

// addTokenToAttributes adds param to each URI="…" attribute of a tag line.
func addTokenToAttributes(line, param string) string {
	const attr = `URI="`
	var out strings.Builder
	for {
		i := strings.Index(line, attr)
		if i < 0 || (i > 0 && line[i-1] != ':' && line[i-1] != ',') {
			if i < 0 {
				out.WriteString(line)
				return out.String()
			}
			// "URI=" inside another attribute's name (e.g. "X-URI="): skip it.
			out.WriteString(line[:i+len(attr)])
			line = line[i+len(attr):]
			continue
		}
		start := i + len(attr)
		j := strings.IndexByte(line[start:], '"')
		if j < 0 {
			out.WriteString(line)
			return out.String()
		}
		out.WriteString(line[:start])
		out.WriteString(addQuery(line[start:start+j], param))
		line = line[start+j:]
	}
}

// addQuery appends param to the query of uri, unless uri already has a token.
func addQuery(uri, param string) string {
	base, frag, hasFrag := strings.Cut(uri, "#")
	_, q, hasQ := strings.Cut(base, "?")
	if hasQ {
		for _, kv := range strings.Split(q, "&") {
			if strings.HasPrefix(kv, "token=") {
				return uri
			}
		}
		base += "&" + param
	} else {
		base += "?" + param
	}
	if hasFrag {
		base += "#" + frag
	}
	return base
}
