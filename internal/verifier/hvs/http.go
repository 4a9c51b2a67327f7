package hvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// ServiceName is the AAS service HVS permissions belong to.
const ServiceName = "HVS"

// Route is one HTTP route and the permission rule a caller needs for it.
type Route struct {
	Method, Pattern, Service, Rule string
}

type route struct {
	Route
	handler func(s *Service, w http.ResponseWriter, r *http.Request) error
}

func rt(method, pattern, rule string, h func(s *Service, w http.ResponseWriter, r *http.Request) error) route {
	return route{Route{method, pattern, ServiceName, rule}, h}
}

// routes is the one table of HVS routes and their permissions.
var routes = []route{
	rt(http.MethodPost, "/hvs/v2/hosts", "hosts:create:*", (*Service).createHost),
	rt(http.MethodGet, "/hvs/v2/hosts", "hosts:search:*", (*Service).searchHosts),
	rt(http.MethodGet, "/hvs/v2/hosts/{id}", "hosts:retrieve:*", (*Service).getHost),
	rt(http.MethodPut, "/hvs/v2/hosts/{id}", "hosts:update:*", (*Service).updateHost),
	rt(http.MethodDelete, "/hvs/v2/hosts/{id}", "hosts:delete:*", (*Service).deleteHost),
	rt(http.MethodPost, "/hvs/v2/hosts/{id}/rebaseline", "hosts:rebaseline:*", (*Service).rebaseline),
	rt(http.MethodPost, "/hvs/v2/hosts/{id}/disable", "hosts:disable:*", (*Service).disableHost),
	rt(http.MethodPost, "/hvs/v2/hosts/{id}/enable", "hosts:enable:*", (*Service).enableHost),
	rt(http.MethodGet, "/hvs/v2/host-status", "host_status:search:*", (*Service).hostStatus),
	rt(http.MethodPost, "/hvs/v2/flavors", "flavors:create:*", (*Service).createFlavors),
	rt(http.MethodGet, "/hvs/v2/flavors", "flavors:search:*", (*Service).searchFlavors),
	rt(http.MethodGet, "/hvs/v2/flavors/{id}", "flavors:retrieve:*", (*Service).getFlavor),
	rt(http.MethodDelete, "/hvs/v2/flavors/{id}", "flavors:delete:*", (*Service).deleteFlavor),
	rt(http.MethodPost, "/hvs/v2/flavorgroups", "flavorgroups:create:*", (*Service).createGroup),
	rt(http.MethodGet, "/hvs/v2/flavorgroups", "flavorgroups:search:*", (*Service).searchGroups),
	rt(http.MethodGet, "/hvs/v2/flavorgroups/{id}", "flavorgroups:retrieve:*", (*Service).getGroup),
	rt(http.MethodPut, "/hvs/v2/flavorgroups/{id}", "flavorgroups:update:*", (*Service).updateGroup),
	rt(http.MethodDelete, "/hvs/v2/flavorgroups/{id}", "flavorgroups:delete:*", (*Service).deleteGroup),
	rt(http.MethodPost, "/hvs/v2/reports", "reports:create:*", (*Service).createReport),
	rt(http.MethodGet, "/hvs/v2/reports", "reports:search:*", (*Service).searchReports),
	rt(http.MethodGet, "/hvs/v2/reports/{id}", "reports:retrieve:*", (*Service).getReport),
	rt(http.MethodPost, "/hvs/v2/ima-policies", "ima_policies:create:*", (*Service).createIMAPolicy),
	rt(http.MethodGet, "/hvs/v2/ima-policies", "ima_policies:search:*", (*Service).searchIMAPolicies),
	rt(http.MethodGet, "/hvs/v2/ima-policies/{id}", "ima_policies:retrieve:*", (*Service).getIMAPolicy),
	rt(http.MethodPut, "/hvs/v2/ima-policies/{id}", "ima_policies:update:*", (*Service).updateIMAPolicy),
	rt(http.MethodDelete, "/hvs/v2/ima-policies/{id}", "ima_policies:delete:*", (*Service).deleteIMAPolicy),
	rt(http.MethodPost, "/hvs/v2/ima-policies/{id}/assign", "ima_policies:assign:*", (*Service).assignIMAPolicy),
	rt(http.MethodPost, "/hvs/v2/ima-policies/{id}/unassign", "ima_policies:assign:*", (*Service).unassignIMAPolicy),
}

// Routes lists the HTTP routes of HVS with their permissions.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		out[i] = r.Route
	}
	return out
}

// Register adds the routes to mux, each wrapped with require(Service, Rule)
// (the AAS middleware; authentication must run before it).
func (s *Service) Register(mux *http.ServeMux, require func(service, rule string) func(http.Handler) http.Handler) {
	for _, r := range routes {
		h := r.handler
		mux.Handle(r.Method+" "+r.Pattern, require(r.Service, r.Rule)(http.HandlerFunc(
			func(w http.ResponseWriter, req *http.Request) {
				if err := h(s, w, req); err != nil {
					api.WriteError(w, req, s.logger, apiError(err))
				}
			})))
	}
}

// apiError gives HVS errors their API kind.
func apiError(err error) error {
	var (
		ae  *api.Error
		in  *InputError
		evi *EvidenceError
	)
	switch {
	case errors.As(err, &ae):
		return err
	case errors.As(err, &in):
		return api.Wrap(api.KindBadRequest, err, in.Msg)
	case errors.Is(err, bus.ErrInvalidHostID):
		return api.Wrap(api.KindBadRequest, err, err.Error())
	case errors.Is(err, flavor.ErrInvalid):
		return api.Wrap(api.KindBadRequest, err, err.Error())
	case errors.As(err, &evi):
		switch evi.Status {
		case report.StatusConnectionTimeout:
			return api.Wrap(api.KindGatewayTimeout, err, err.Error())
		case report.StatusConnectionFailure:
			return api.Wrap(api.KindUnavailable, err, err.Error())
		}
		return api.Wrap(api.KindConflict, err, err.Error())
	case errors.Is(err, ErrHostDisabled):
		return api.Wrap(api.KindConflict, err, err.Error())
	case errors.Is(err, ErrQueueFull):
		return api.Wrap(api.KindUnavailable, err, err.Error())
	case errors.Is(err, store.ErrNotFound):
		return api.Wrap(api.KindNotFound, err, err.Error())
	case errors.Is(err, store.ErrConflict):
		return api.Wrap(api.KindConflict, err, err.Error())
	}
	return err
}

// ---- hosts

const (
	maxHostName    = 255
	maxDescription = 1024
)

// ParseConnectionString returns the host id of "nats://<host-id>" (or the
// reference's "intel:nats://<host-id>").
func ParseConnectionString(cs string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(cs, "intel:"), "nats://")
	if !ok {
		return "", inputErrorf("connection_string %q: want nats://<host-id>", cs)
	}
	if err := bus.ValidateHostID(rest); err != nil {
		return "", &InputError{Msg: "connection_string: " + err.Error()}
	}
	return rest, nil
}

func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

func checkHost(in restapi.HostRequest) error {
	if in.HostName == "" || len(in.HostName) > maxHostName || !printable(in.HostName) {
		return inputErrorf("host_name must be 1 to %d printable characters", maxHostName)
	}
	if len(in.Description) > maxDescription || !printable(in.Description) {
		return inputErrorf("description must be at most %d printable characters", maxDescription)
	}
	return nil
}

func ptrTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// groupNames maps group IDs to names.
func (s *Service) groupNames(r *http.Request) (map[string]string, error) {
	gs, err := s.store.ListFlavorGroups(r.Context())
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, g := range gs {
		m[g.ID] = g.Name
	}
	return m, nil
}

func (s *Service) hostView(h store.Host, names map[string]string) restapi.Host {
	v := restapi.Host{ID: h.ID, HostName: h.Name, ConnectionString: h.ConnectionString, Description: h.Description,
		HardwareUUID: h.HardwareUUID, FlavorGroupNames: []string{}, Status: h.Status,
		LastConnected: ptrTime(h.LastConnected), RebootedAt: ptrTime(h.Boot.RebootedAt), Created: h.CreatedAt,
		LastAttempt: ptrTime(h.LastAttempt), LastSuccess: ptrTime(h.LastSuccess),
		Overdue: h.Overdue(s.cfg.OverdueBefore(s.cfg.Now()))}
	for _, id := range h.FlavorGroupIDs {
		v.FlavorGroupNames = append(v.FlavorGroupNames, names[id])
	}
	if h.Boot.Known {
		rc := h.Boot.ResetCount
		v.ResetCount = &rc
	}
	return v
}

func (s *Service) createHost(w http.ResponseWriter, r *http.Request) error {
	var in restapi.HostRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if err := checkHost(in); err != nil {
		return err
	}
	id, err := ParseConnectionString(in.ConnectionString)
	if err != nil {
		return err
	}
	ctx := r.Context()
	groups, err := s.groupIDs(ctx, in.FlavorGroupNames)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	h := store.Host{ID: id, Name: in.HostName, ConnectionString: in.ConnectionString, Description: in.Description,
		FlavorGroupIDs: groups, Status: report.StatusUnknown, StatusAt: now, CreatedAt: now}
	if err := s.store.CreateHost(ctx, h); err != nil {
		return err
	}
	enrollErr := s.ensureEnrolled(r, id)
	status, connected := report.StatusConnected, true
	if enrollErr != nil {
		status, connected = report.StatusAIKNotProvisioned, false
	}
	if err := s.store.SetHostStatus(ctx, id, status, now, connected); err != nil {
		return err
	}
	if h, err = s.store.HostByID(ctx, id); err != nil {
		return err
	}
	names, err := s.groupNames(r)
	if err != nil {
		return err
	}
	v := s.hostView(h, names)
	if enrollErr != nil {
		v.EnrollmentError = enrollErr.Error()
	}
	api.WriteCreated(w, "/hvs/v2/hosts/"+id, v)
	return nil
}

// ensureEnrolled enrolls the host's AK unless an accepted one is enrolled.
func (s *Service) ensureEnrolled(r *http.Request, hostID string) error {
	ctx := r.Context()
	if _, _, err := s.enroller.VerifyAK(ctx, hostID); err == nil {
		return nil
	}
	if _, err := s.enroller.Enroll(ctx, hostID); err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "host registered without an enrolled ak",
			slog.String(keyHost, hostID), slog.String(keyError, err.Error()))
		return err
	}
	return nil
}

// boolParam reads the query parameter name as true or false; nil when it is
// absent or empty.
func boolParam(q url.Values, name string) (*bool, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return nil, inputErrorf("%s must be true or false, got %q", name, v)
	}
	return &b, nil
}

func (s *Service) searchHosts(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.HostFilter{Name: q.Get("nameEqualTo"), HardwareUUID: q.Get("hostHardwareId")}
	trusted, err := boolParam(q, "trusted")
	if err != nil {
		return err
	}
	f.Trusted = trusted
	hs, err := s.store.ListHosts(r.Context(), f)
	if err != nil {
		return err
	}
	names, err := s.groupNames(r)
	if err != nil {
		return err
	}
	out := restapi.HostList{Hosts: []restapi.Host{}}
	for _, h := range hs {
		out.Hosts = append(out.Hosts, s.hostView(h, names))
	}
	if err := s.markDisabled(r.Context(), out.Hosts); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) getHost(w http.ResponseWriter, r *http.Request) error {
	h, err := s.store.HostByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	names, err := s.groupNames(r)
	if err != nil {
		return err
	}
	v := []restapi.Host{s.hostView(h, names)}
	if err := s.markDisabled(r.Context(), v); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, v[0])
	return nil
}

func (s *Service) updateHost(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	h, err := s.store.HostByID(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	var in restapi.HostRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if err := checkHost(in); err != nil {
		return err
	}
	if in.ConnectionString != "" {
		id, err := ParseConnectionString(in.ConnectionString)
		if err != nil {
			return err
		}
		if id != h.ID {
			return inputErrorf("connection_string names host %q, not %q: register the other host instead", id, h.ID)
		}
		h.ConnectionString = in.ConnectionString
	}
	if h.FlavorGroupIDs, err = s.groupIDs(ctx, in.FlavorGroupNames); err != nil {
		return err
	}
	h.Name, h.Description = in.HostName, in.Description
	if err := s.store.UpdateHost(ctx, h); err != nil {
		return err
	}
	return s.getHost(w, r)
}

func (s *Service) deleteHost(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.store.DeleteHost(r.Context(), id); err != nil {
		return err
	}
	if s.hostRemoved != nil {
		s.hostRemoved(id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) hostStatus(w http.ResponseWriter, r *http.Request) error {
	var hs []store.Host
	if id := r.URL.Query().Get("hostId"); id != "" {
		h, err := s.store.HostByID(r.Context(), id)
		if err != nil {
			return err
		}
		hs = []store.Host{h}
	} else {
		var err error
		if hs, err = s.store.ListHosts(r.Context(), store.HostFilter{}); err != nil {
			return err
		}
	}
	out := restapi.HostStatusList{HostStatus: []restapi.HostStatus{}}
	for _, h := range hs {
		out.HostStatus = append(out.HostStatus, restapi.HostStatus{HostID: h.ID, HostName: h.Name, Status: h.Status,
			StatusAt: ptrTime(h.StatusAt), LastConnected: ptrTime(h.LastConnected)})
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) rebaseline(w http.ResponseWriter, r *http.Request) error {
	var in restapi.RebaselineRequest
	if r.ContentLength != 0 {
		if err := api.DecodeJSON(w, r, &in, 0); err != nil {
			return err
		}
	}
	signed, err := s.Rebaseline(r.Context(), r.PathValue("id"), in.PartialFlavorTypes)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, flavor.SignedFlavorCollection{SignedFlavors: signed})
	return nil
}

// ---- flavors

func (s *Service) createFlavors(w http.ResponseWriter, r *http.Request) error {
	var in restapi.FlavorRequest
	if err := api.DecodeJSON(w, r, &in, flavor.MaxCollectionSize); err != nil {
		return err
	}
	sources := 0
	for _, set := range []bool{in.ConnectionString != "" || in.HostID != "", in.FlavorCollection != nil, in.SignedFlavorCollection != nil} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return inputErrorf("give exactly one of connection_string or host_id, flavor_collection and signed_flavor_collection")
	}
	ctx := r.Context()
	var (
		signed []flavor.SignedFlavor
		err    error
	)
	switch {
	case in.FlavorCollection != nil:
		signed, err = s.ImportFlavors(ctx, *in.FlavorCollection, in.FlavorGroupNames)
	case in.SignedFlavorCollection != nil:
		signed, err = s.ImportSignedFlavors(ctx, *in.SignedFlavorCollection, in.FlavorGroupNames)
	default:
		id := in.HostID
		if in.ConnectionString != "" {
			if id, err = ParseConnectionString(in.ConnectionString); err != nil {
				return err
			}
			if in.HostID != "" && in.HostID != id {
				return inputErrorf("host_id %q and connection_string %q name different hosts", in.HostID, in.ConnectionString)
			}
		}
		if err := bus.ValidateHostID(id); err != nil {
			return err
		}
		parts := in.PartialFlavorTypes
		if len(parts) == 0 {
			parts = DefaultRebaselineParts()
		}
		signed, err = s.FlavorsFromHost(ctx, id, parts, in.FlavorGroupNames)
	}
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusCreated, flavor.SignedFlavorCollection{SignedFlavors: signed})
	return nil
}

func decodeSigned(recs []store.Flavor) ([]flavor.SignedFlavor, error) {
	out := make([]flavor.SignedFlavor, 0, len(recs))
	for _, rec := range recs {
		var sf flavor.SignedFlavor
		if err := json.Unmarshal(rec.Signed, &sf); err != nil {
			return nil, fmt.Errorf("stored flavor %q: %w", rec.ID, err)
		}
		out = append(out, sf)
	}
	return out, nil
}

func (s *Service) searchFlavors(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.FlavorFilter{ID: q.Get("id"), GroupID: q.Get("flavorgroupId"), HostID: q.Get("hostId")}
	for _, v := range q["flavorParts"] {
		for _, p := range strings.Split(v, ",") {
			if !flavor.Part(p).Valid() {
				return inputErrorf("flavorParts: unknown flavor part %q", p)
			}
			f.Parts = append(f.Parts, p)
		}
	}
	recs, err := s.store.ListFlavors(r.Context(), f)
	if err != nil {
		return err
	}
	signed, err := decodeSigned(recs)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, flavor.SignedFlavorCollection{SignedFlavors: signed})
	return nil
}

func (s *Service) getFlavor(w http.ResponseWriter, r *http.Request) error {
	rec, err := s.store.FlavorByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	signed, err := decodeSigned([]store.Flavor{rec})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, signed[0])
	return nil
}

func (s *Service) deleteFlavor(w http.ResponseWriter, r *http.Request) error {
	if err := s.store.DeleteFlavor(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- flavor groups

func (s *Service) createGroup(w http.ResponseWriter, r *http.Request) error {
	var g flavor.Group
	if err := api.DecodeJSON(w, r, &g, flavor.MaxTemplateSize); err != nil {
		return err
	}
	g.ID = s.cfg.NewID()
	rec, err := groupRecord(g, s.cfg.Now())
	if err != nil {
		return err
	}
	if err := s.store.CreateFlavorGroup(r.Context(), rec); err != nil {
		return err
	}
	api.WriteCreated(w, "/hvs/v2/flavorgroups/"+g.ID, g)
	return nil
}

func (s *Service) searchGroups(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.store.ListFlavorGroups(r.Context())
	if err != nil {
		return err
	}
	out := restapi.FlavorGroupList{Groups: []flavor.Group{}}
	name := r.URL.Query().Get("nameEqualTo")
	for _, rec := range recs {
		if name != "" && rec.Name != name {
			continue
		}
		g, err := decodeGroup(rec)
		if err != nil {
			return err
		}
		out.Groups = append(out.Groups, g)
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) getGroup(w http.ResponseWriter, r *http.Request) error {
	rec, err := s.store.FlavorGroupByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	g, err := decodeGroup(rec)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, g)
	return nil
}

func isDefaultGroup(name string) bool {
	return name == flavor.GroupAutomatic || name == flavor.GroupHostUnique
}

func (s *Service) updateGroup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	old, err := s.store.FlavorGroupByID(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	var g flavor.Group
	if err := api.DecodeJSON(w, r, &g, flavor.MaxTemplateSize); err != nil {
		return err
	}
	if isDefaultGroup(old.Name) && g.Name != old.Name {
		return api.Errorf(api.KindConflict, "the default flavor group %q cannot be renamed", old.Name)
	}
	g.ID = old.ID
	rec, err := groupRecord(g, old.CreatedAt)
	if err != nil {
		return err
	}
	if err := s.store.UpdateFlavorGroup(ctx, rec); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, g)
	return nil
}

func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	g, err := s.store.FlavorGroupByID(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if isDefaultGroup(g.Name) {
		return api.Errorf(api.KindConflict, "the default flavor group %q cannot be deleted", g.Name)
	}
	if err := s.store.DeleteFlavorGroup(ctx, g.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- reports

// Report listing limits.
const (
	defaultReportLimit = 100
	maxReportLimit     = 1000
)

// resolveHost finds the host a report request names. A host named by
// host_id is read only if read is set: a synchronous report reads the
// host itself (store.HostForReport), and a missing one is ErrNotFound
// there as here.
func (s *Service) resolveHost(r *http.Request, in restapi.ReportRequest, read bool) (store.Host, error) {
	set := 0
	for _, v := range []string{in.HostName, in.HostID, in.HardwareUUID} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return store.Host{}, inputErrorf("give exactly one of host_name, host_id and hardware_uuid")
	}
	ctx := r.Context()
	switch {
	case in.HostID != "":
		if err := bus.ValidateHostID(in.HostID); err != nil {
			return store.Host{}, err
		}
		if !read {
			return store.Host{ID: in.HostID}, nil
		}
		return s.store.HostByID(ctx, in.HostID)
	case in.HostName != "":
		return s.store.HostByName(ctx, in.HostName)
	}
	hs, err := s.store.ListHosts(ctx, store.HostFilter{HardwareUUID: in.HardwareUUID})
	if err != nil {
		return store.Host{}, err
	}
	switch len(hs) {
	case 0:
		return store.Host{}, fmt.Errorf("host with hardware uuid %q: %w", in.HardwareUUID, store.ErrNotFound)
	case 1:
		return hs[0], nil
	}
	return store.Host{}, api.Errorf(api.KindConflict, "%d hosts report hardware uuid %q; name the host by host_id", len(hs), in.HardwareUUID)
}

func (s *Service) createReport(w http.ResponseWriter, r *http.Request) error {
	var in restapi.ReportRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	process := r.URL.Query().Get("process")
	if process != "" && process != "async" && process != "sync" {
		return inputErrorf("process must be sync or async, got %q", process)
	}
	h, err := s.resolveHost(r, in, process == "async")
	if err != nil {
		return err
	}
	if process == "async" {
		if err := s.Enqueue(h.ID); err != nil {
			return err
		}
		api.WriteJSON(w, http.StatusAccepted, restapi.ReportQueued{HostID: h.ID, Status: report.StatusQueue})
		return nil
	}
	format, err := reportFormat(r)
	if err != nil {
		return err
	}
	if format == "ear" {
		return inputErrorf("a new report is answered as json or jws; get it as ear from /hvs/v2/reports/{id}")
	}
	sr, err := s.createSignedReport(r.Context(), h.ID)
	if err != nil {
		return err
	}
	location := "/hvs/v2/reports/" + sr.report.ID
	if format == "jws" {
		// The signed form in the answer: a client that acts on the
		// signature (the attestation manager) need not ask again.
		w.Header().Set("Location", location)
		writeToken(w, http.StatusCreated, restapi.MediaJWS, sr.jws)
		return nil
	}
	api.WriteCreated(w, location, sr.report)
	return nil
}

func (s *Service) searchReports(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.ReportFilter{HostID: q.Get("hostId"), HostName: q.Get("hostName"), AfterID: q.Get("afterId"), Limit: defaultReportLimit}
	latest, err := boolParam(q, "latestPerHost")
	if err != nil {
		return err
	}
	f.LatestPerHost = latest != nil && *latest
	for name, t := range map[string]*time.Time{"fromDate": &f.From, "toDate": &f.To} {
		if v := q.Get(name); v != "" {
			parsed, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return inputErrorf("%s must be an RFC 3339 time, got %q", name, v)
			}
			*t = parsed
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxReportLimit {
			return inputErrorf("limit must be 1 to %d, got %q", maxReportLimit, v)
		}
		f.Limit = n
	}
	rs, err := s.store.ListReports(r.Context(), f)
	if err != nil {
		return err
	}
	out := restapi.ReportList{Reports: []json.RawMessage{}}
	for _, rep := range rs {
		out.Reports = append(out.Reports, rep.JSON)
	}
	if len(rs) == f.Limit {
		out.NextAfterID = rs[len(rs)-1].ID
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

// reportFormat picks the representation of GET /hvs/v2/reports/{id}:
// ?format=ear|jws|json, else the Accept header.
func reportFormat(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "ear", "jws", "json":
		return f, nil
	case "":
	default:
		return "", inputErrorf("format must be ear, jws or json, got %q", f)
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch strings.ToLower(mt) {
		case restapi.MediaEAR:
			return "ear", nil
		case restapi.MediaJWS:
			return "jws", nil
		case "application/json":
			return "json", nil
		}
	}
	return "json", nil
}

func (s *Service) getReport(w http.ResponseWriter, r *http.Request) error {
	format, err := reportFormat(r)
	if err != nil {
		return err
	}
	rec, err := s.store.ReportByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	switch format {
	case "jws":
		writeToken(w, http.StatusOK, restapi.MediaJWS, rec.JWS)
		return nil
	case "ear":
		var rep report.Report
		if err := json.Unmarshal(rec.JSON, &rep); err != nil {
			return fmt.Errorf("stored report %q: %w", rec.ID, err)
		}
		key, err := s.signingKey(r.Context())
		if err != nil {
			return err
		}
		token, err := key.report.EAR(&rep, s.cfg.EARProfile, s.cfg.Now())
		if err != nil {
			return err
		}
		writeToken(w, http.StatusOK, restapi.MediaEAR, token)
		return nil
	}
	api.WriteJSON(w, http.StatusOK, json.RawMessage(rec.JSON))
	return nil
}

func writeToken(w http.ResponseWriter, status int, mediaType, token string) {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, token) // no copy of the token
}
