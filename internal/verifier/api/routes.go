package api

import (
	"log/slog"
	"net/http"
)

// Route is one HTTP route and the AAS permission (service and rule) a
// caller needs for it.
type Route struct {
	Method, Pattern, Service, Rule string
}

// Entry binds a route to the handler of service S; the handler's error is
// written with WriteError after Kind maps it.
type Entry[S any] struct {
	Route
	Handle func(s S, w http.ResponseWriter, r *http.Request) error
}

// Table is the one table of a service's routes and their permissions.
type Table[S any] []Entry[S]

// Routes lists the table's routes.
func (t Table[S]) Routes() []Route {
	out := make([]Route, len(t))
	for i, e := range t {
		out[i] = e.Route
	}
	return out
}

// Register adds the routes to mux, each wrapped with require(Service,
// Rule) (the AAS middleware, which authenticates first). A handler's error
// goes through kind (the service's mapping to error kinds) to WriteError.
func (t Table[S]) Register(mux *http.ServeMux, s S, require func(service, rule string) func(http.Handler) http.Handler,
	kind func(error) error, logger *slog.Logger) {
	for _, e := range t {
		h := e.Handle
		mux.Handle(e.Method+" "+e.Pattern, require(e.Service, e.Rule)(http.HandlerFunc(
			func(w http.ResponseWriter, req *http.Request) {
				if err := h(s, w, req); err != nil {
					WriteError(w, req, logger, kind(err))
				}
			})))
	}
}
