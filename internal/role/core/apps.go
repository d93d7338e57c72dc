package core

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quasipaa/quasipaa/internal/apps"
	"github.com/quasipaa/quasipaa/internal/config"
)

// appsTimeout bounds the registry calls of one apps request.
const appsTimeout = 5 * time.Second

// AppJSON is an apps entry as the API shows it: its place in the match
// order and the fields of the config file.
type AppJSON struct {
	Position int `json:"position"`
	apps.JSON
}

// AppsJSON is the answer of GET /api/v1/apps.
type AppsJSON struct {
	Apps []AppJSON `json:"apps"`
	// Version changes with every change of the list, on any core.
	Version int64 `json:"version"`
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request) {
	list, version := a.apps.List()
	out := AppsJSON{Apps: make([]AppJSON, len(list)), Version: version}
	for i, app := range list {
		out.Apps[i] = AppJSON{Position: i, JSON: apps.ToJSON(app)}
	}
	WriteJSON(w, http.StatusOK, out)
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request) {
	match := r.PathValue("match")
	app, i, ok := a.apps.Get(match)
	if !ok {
		WriteError(w, http.StatusNotFound, "app_not_found", "no app with match "+strconv.Quote(match))
		return
	}
	WriteJSON(w, http.StatusOK, AppJSON{Position: i, JSON: apps.ToJSON(app)})
}

// readApp reads the app in r's body, answering 413 or 400 itself.
func readApp(w http.ResponseWriter, r *http.Request) (config.App, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, apps.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, "payload_too_large", "the body is larger than "+strconv.Itoa(apps.MaxBody)+" bytes")
			return config.App{}, false
		}
		WriteError(w, http.StatusBadRequest, "bad_request", "reading the body: "+err.Error())
		return config.App{}, false
	}
	app, err := apps.DecodeBytes(body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return config.App{}, false
	}
	return app, true
}

// positionParam reads ?position= (-1 when absent), answering 400 itself.
func positionParam(w http.ResponseWriter, r *http.Request) (int, bool) {
	if r.URL.Query().Get("position") == "" {
		return -1, true
	}
	return intParam(w, r, "position", 0, config.MaxApps)
}

func (a *API) createApp(w http.ResponseWriter, r *http.Request) {
	pos, ok := positionParam(w, r)
	if !ok {
		return
	}
	app, ok := readApp(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), appsTimeout)
	defer cancel()
	at, err := a.apps.Create(ctx, app, pos)
	if err != nil {
		a.appsError(w, err)
		return
	}
	a.log.Info("app created through the API", "match", app.Match, "position", at, "key", KeyName(r.Context()))
	w.Header().Set("Location", "/api/v1/apps/"+escapeMatch(app.Match))
	WriteJSON(w, http.StatusCreated, AppJSON{Position: at, JSON: apps.ToJSON(app)})
}

func (a *API) updateApp(w http.ResponseWriter, r *http.Request) {
	match := r.PathValue("match")
	pos, ok := positionParam(w, r)
	if !ok {
		return
	}
	app, ok := readApp(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), appsTimeout)
	defer cancel()
	at, err := a.apps.Update(ctx, match, app, pos)
	if err != nil {
		a.appsError(w, err)
		return
	}
	a.log.Info("app updated through the API", "match", match, "new_match", app.Match, "position", at, "key", KeyName(r.Context()))
	WriteJSON(w, http.StatusOK, AppJSON{Position: at, JSON: apps.ToJSON(app)})
}

func (a *API) deleteApp(w http.ResponseWriter, r *http.Request) {
	match := r.PathValue("match")
	ctx, cancel := context.WithTimeout(r.Context(), appsTimeout)
	defer cancel()
	if err := a.apps.Delete(ctx, match); err != nil {
		a.appsError(w, err)
		return
	}
	a.log.Info("app deleted through the API", "match", match, "key", KeyName(r.Context()))
	w.WriteHeader(http.StatusNoContent)
}

// appsError answers a failed change of the apps list.
func (a *API) appsError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, apps.ErrInvalid):
		WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, apps.ErrNotFound):
		WriteError(w, http.StatusNotFound, "app_not_found", err.Error())
	case errors.Is(err, apps.ErrDuplicate):
		WriteError(w, http.StatusConflict, "app_exists", err.Error())
	case errors.Is(err, apps.ErrTooMany):
		WriteError(w, http.StatusConflict, "too_many_apps", err.Error())
	default:
		a.log.Error("changing apps", "err", err)
		WriteError(w, http.StatusServiceUnavailable, "registry_unavailable", err.Error())
	}
}

// escapeMatch escapes a match pattern for a URL path, keeping its slashes.
func escapeMatch(m string) string {
	parts := strings.Split(m, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(url.PathEscape(p), "%2A", "*")
	}
	return strings.Join(parts, "/")
}
