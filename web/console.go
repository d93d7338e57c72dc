package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// ConsolePrefix is the URL path under which the web console is served.
const ConsolePrefix = "/console/"

//go:embed console
var consoleFiles embed.FS

// consoleCSP lets the console load only its own files, call the API and the
// playback endpoints of its own origin, play MediaSource (blob:) media and
// frame the built-in WHEP player and WHIP publisher pages; nobody may frame
// the console itself.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' blob:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// consoleHandler serves the console's embedded files from memory.
type consoleHandler struct {
	files map[string]asset // by path below ConsolePrefix
	index asset
}

// ConsoleHandler serves GET and HEAD of the web console: its files under
// /console/, index.html for /console/ and for any other path under it that
// names no file (the console routes itself), a redirect from /console to
// /console/. The files hold no data, so they are served without
// authentication; the console asks for an API key when the API wants one.
func ConsoleHandler() http.Handler {
	h := &consoleHandler{files: map[string]asset{}}
	err := fs.WalkDir(consoleFiles, "console", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(consoleFiles, p)
		if err != nil {
			return err
		}
		h.files[strings.TrimPrefix(p, "console/")] = newAsset(p, body)
		return nil
	})
	if err != nil {
		panic("web: " + err.Error())
	}
	idx, ok := h.files["index.html"]
	if !ok {
		panic("web: console/index.html is missing")
	}
	h.index = idx
	return h
}

func (h *consoleHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == strings.TrimSuffix(ConsolePrefix, "/") {
		if !allowGet(w, r) {
			return
		}
		http.Redirect(w, r, ConsolePrefix, http.StatusMovedPermanently)
		return
	}
	name, ok := strings.CutPrefix(p, ConsolePrefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "." || seg == ".." {
			http.Error(w, "invalid path: dot segments are not allowed", http.StatusBadRequest)
			return
		}
	}
	if !allowGet(w, r) {
		return
	}
	a, found := h.files[name]
	if !found {
		// A file-like name that does not exist is a real 404 (a typo in a
		// script URL must not come back as HTML); anything else is a route
		// of the single-page app.
		if last := name[strings.LastIndex(name, "/")+1:]; strings.Contains(last, ".") {
			http.NotFound(w, r)
			return
		}
		a = h.index
	}
	hd := w.Header()
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", consoleCSP)
	hd.Set("X-Frame-Options", "DENY")
	serve(w, r, a)
}
