package core

import "net/http"

// registerCluster adds the cluster endpoints (nodes, drain, dispatch,
// routes, jobs) when the API has a registry.
func (a *API) registerCluster(mux *http.ServeMux) {}
