// Package web embeds the built-in browser pages: a WebRTC (WHEP) player served
// at /{app}/{stream}/ and a WebRTC (WHIP) camera publisher served at
// /{app}/{stream}/publish, with their script and style sheet under AssetPrefix.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/streampath"
)

// AssetPrefix is the URL path under which the pages' assets are served.
const AssetPrefix = "/_quasipaa/player/"

//go:embed player
var files embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the pages and their assets from memory.
type handler struct {
	assets  map[string]asset // by file name, for AssetPrefix
	player  asset            // index.html, asset URLs versioned
	publish asset            // publish.html, asset URLs versioned
}

// PlayerHandler serves GET and HEAD of the player page for /{app}/{stream}/,
// the publish page for /{app}/{stream}/publish, and the pages' assets at
// /_quasipaa/player/{file} (cached as immutable: the pages name them with a
// content hash). Anything else is 404, a path with a dot segment 400.
func PlayerHandler() http.Handler {
	h := &handler{assets: map[string]asset{}}
	entries, err := fs.ReadDir(files, "player")
	if err != nil {
		panic("web: " + err.Error())
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		body, err := fs.ReadFile(files, "player/"+e.Name())
		if err != nil {
			panic("web: " + err.Error())
		}
		h.assets[e.Name()] = newAsset(e.Name(), body)
	}
	// The pages name each asset with ?v=<hash of its content>, so a new
	// server version is never hidden behind a browser's immutable cache.
	version := func(page string) asset {
		body := h.assets[page].body
		for name, a := range h.assets {
			if strings.HasSuffix(name, ".html") {
				continue
			}
			body = bytes.ReplaceAll(body, []byte(name+"?v=dev"), []byte(name+"?v="+a.etag[1:13]))
		}
		return newAsset(page, body)
	}
	h.player = version("index.html")
	h.publish = version("publish.html")
	return h
}

func newAsset(name string, body []byte) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType(name), etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	}
	return "application/octet-stream"
}

// pageCSP allows only the page's own script, style and connections; media
// comes from WebRTC (srcObject) and needs no source. Other sites may embed
// the player in a frame, not the publish page, which uses the camera.
const (
	pageCSP    = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'"
	publishCSP = pageCSP + "; frame-ancestors 'self'"
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			http.Error(w, "invalid path: dot segments are not allowed", http.StatusBadRequest)
			return
		}
	}
	if name, ok := strings.CutPrefix(p, AssetPrefix); ok {
		a, found := h.assets[name]
		if !found || strings.HasSuffix(name, ".html") {
			http.NotFound(w, r)
			return
		}
		if !allowGet(w, r) {
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		serve(w, r, a)
		return
	}
	page, publish, ok := h.page(p)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !allowGet(w, r) {
		return
	}
	hd := w.Header()
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Referrer-Policy", "no-referrer")
	if publish {
		hd.Set("Content-Security-Policy", publishCSP)
		hd.Set("X-Frame-Options", "SAMEORIGIN")
	} else {
		hd.Set("Content-Security-Policy", pageCSP)
	}
	serve(w, r, page)
}

// page picks the page for /{app}/{stream}/ or /{app}/{stream}/publish.
func (h *handler) page(p string) (page asset, publish, ok bool) {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(segs) != 3 || streampath.Validate(segs[0]+"/"+segs[1]) != nil {
		return asset{}, false, false
	}
	switch segs[2] {
	case "":
		return h.player, false, true
	case "publish":
		return h.publish, true, true
	}
	return asset{}, false, false
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func serve(w http.ResponseWriter, r *http.Request, a asset) {
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("ETag", a.etag)
	// ServeContent answers HEAD, If-None-Match (304) and Range.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
