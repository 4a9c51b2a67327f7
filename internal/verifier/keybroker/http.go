package keybroker

import (
	"errors"
	"net/http"

	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/store"
)

// ServiceName is the AAS service the key broker's permissions belong to:
// HVS, so that the HVS Administrator role holds them.
const ServiceName = "HVS"

// maxRequestBytes bounds a request body: a value, a policy and base64.
const maxRequestBytes = 64 << 10

// routes is the one table of the key broker's routes and permissions.
var routes = api.Table[*Broker]{
	{Route: api.Route{Method: http.MethodPost, Pattern: "/hvs/v2/secrets", Service: ServiceName, Rule: "secrets:create:*"}, Handle: (*Broker).createSecret},
	{Route: api.Route{Method: http.MethodGet, Pattern: "/hvs/v2/secrets", Service: ServiceName, Rule: "secrets:search:*"}, Handle: (*Broker).searchSecrets},
	{Route: api.Route{Method: http.MethodGet, Pattern: "/hvs/v2/secrets/{id}", Service: ServiceName, Rule: "secrets:retrieve:*"}, Handle: (*Broker).getSecret},
	{Route: api.Route{Method: http.MethodPut, Pattern: "/hvs/v2/secrets/{id}", Service: ServiceName, Rule: "secrets:update:*"}, Handle: (*Broker).updateSecret},
	{Route: api.Route{Method: http.MethodDelete, Pattern: "/hvs/v2/secrets/{id}", Service: ServiceName, Rule: "secrets:delete:*"}, Handle: (*Broker).deleteSecret},
}

// Routes lists the key broker's HTTP routes with their permissions.
func Routes() []api.Route { return routes.Routes() }

// Register adds the routes to mux, each wrapped with require(Service, Rule)
// (the AAS middleware, which authenticates first).
func (b *Broker) Register(mux *http.ServeMux, require func(service, rule string) func(http.Handler) http.Handler) {
	routes.Register(mux, b, require, apiError, b.logger)
}

// apiError gives the broker's errors their API kind.
func apiError(err error) error {
	var ae *api.Error
	switch {
	case errors.As(err, &ae):
		return err
	case errors.Is(err, ErrInvalidPolicy):
		return api.Wrap(api.KindBadRequest, err, err.Error())
	case errors.Is(err, store.ErrNotFound):
		return api.Wrap(api.KindNotFound, err, "no such secret")
	case errors.Is(err, store.ErrConflict):
		return api.Wrap(api.KindConflict, err, "a secret of that name exists")
	}
	return err
}

func (b *Broker) createSecret(w http.ResponseWriter, r *http.Request) error {
	var in restapi.SecretRequest
	if err := api.DecodeJSON(w, r, &in, maxRequestBytes); err != nil {
		return err
	}
	s, err := b.Create(r.Context(), in)
	if err != nil {
		return err
	}
	api.WriteCreated(w, "/hvs/v2/secrets/"+s.ID, s)
	return nil
}

func (b *Broker) searchSecrets(w http.ResponseWriter, r *http.Request) error {
	list, err := b.List(r.Context())
	if err != nil {
		return err
	}
	if name := r.URL.Query().Get("nameEqualTo"); name != "" {
		kept := list.Secrets[:0]
		for _, s := range list.Secrets {
			if s.Name == name {
				kept = append(kept, s)
			}
		}
		list.Secrets = kept
	}
	api.WriteJSON(w, http.StatusOK, list)
	return nil
}

func (b *Broker) getSecret(w http.ResponseWriter, r *http.Request) error {
	s, err := b.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, s)
	return nil
}

func (b *Broker) updateSecret(w http.ResponseWriter, r *http.Request) error {
	var in restapi.SecretUpdate
	if err := api.DecodeJSON(w, r, &in, maxRequestBytes); err != nil {
		return err
	}
	s, err := b.Update(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, s)
	return nil
}

func (b *Broker) deleteSecret(w http.ResponseWriter, r *http.Request) error {
	if err := b.Delete(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
