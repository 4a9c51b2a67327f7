package hvs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"trustedcompute.io/tc/internal/imapolicy"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/report"
	"trustedcompute.io/tc/internal/verifier/store"
)

// IMA runtime policies (issue 16): created, updated (each update is a new
// version), deleted and assigned to hosts and flavor groups over
// /hvs/v2/ima-policies. Every version is stored with HVS's signature of a
// statement naming the policy, the version and the SHA-256 of its
// canonical document (report.SignIMAPolicy, the verifier's signing key as
// for flavors and reports); a report uses a version only once that
// signature verified (imaPolicyCache).

// maxIMAPolicyRequest bounds a create or update request: the document's
// limit and room for the rest of the body.
const maxIMAPolicyRequest = imapolicy.MaxDocumentBytes + 64<<10

// policyName is what a policy may be called: it names the policy in paths
// (/hvs/v2/ima-policies/{name}) and on command lines.
var policyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// imaPolicyStatement is what HVS signs of a policy version.
type imaPolicyStatement struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
	// Digest is "sha256:<hex>" of the stored document.
	Digest string `json:"digest"`
}

func documentDigest(doc []byte) string {
	sum := sha256.Sum256(doc)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// parseIMAPolicy validates a document and returns its canonical encoding;
// a bad document is an InputError that names what is wrong.
func parseIMAPolicy(raw []byte) ([]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, inputErrorf("policy is required")
	}
	p, err := imapolicy.Parse(raw)
	if err != nil {
		return nil, &InputError{Msg: err.Error()}
	}
	doc, err := p.Marshal()
	if err != nil {
		return nil, &InputError{Msg: err.Error()}
	}
	if _, err := imapolicy.Compile(p); err != nil {
		return nil, &InputError{Msg: err.Error()}
	}
	return doc, nil
}

// signIMAPolicy makes a version of a policy: its canonical document signed.
func (s *Service) signIMAPolicy(ctx context.Context, p store.IMAPolicy, version int64, doc []byte, now time.Time) (store.IMAPolicyVersion, error) {
	key, err := s.signingKey(ctx)
	if err != nil {
		return store.IMAPolicyVersion{}, err
	}
	signer, err := report.NewSigner(key.key, key.chain)
	if err != nil {
		return store.IMAPolicyVersion{}, fmt.Errorf("sign ima policy %q: %w", p.Name, err)
	}
	statement, err := json.Marshal(imaPolicyStatement{ID: p.ID, Name: p.Name, Version: version, Digest: documentDigest(doc)})
	if err != nil {
		return store.IMAPolicyVersion{}, fmt.Errorf("sign ima policy %q: %w", p.Name, err)
	}
	sig, err := signer.SignIMAPolicy(statement)
	if err != nil {
		return store.IMAPolicyVersion{}, fmt.Errorf("sign ima policy %q: %w", p.Name, err)
	}
	return store.IMAPolicyVersion{PolicyID: p.ID, Version: version, Document: doc, Signature: sig, CreatedAt: now}, nil
}

// CreateIMAPolicy validates, signs and stores a new policy at version 1.
func (s *Service) CreateIMAPolicy(ctx context.Context, name, description string, raw []byte) (store.IMAPolicy, error) {
	if !policyName.MatchString(name) {
		return store.IMAPolicy{}, inputErrorf("name %q: want 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	if len(description) > maxDescription || !printable(description) {
		return store.IMAPolicy{}, inputErrorf("description must be at most %d printable characters", maxDescription)
	}
	doc, err := parseIMAPolicy(raw)
	if err != nil {
		return store.IMAPolicy{}, err
	}
	now := s.cfg.Now().UTC()
	p := store.IMAPolicy{ID: s.cfg.NewID(), Name: name, Description: description, CreatedAt: now}
	v, err := s.signIMAPolicy(ctx, p, 1, doc, now)
	if err != nil {
		return store.IMAPolicy{}, err
	}
	if err := s.store.CreateIMAPolicy(ctx, p, v); err != nil {
		return store.IMAPolicy{}, err
	}
	return s.store.IMAPolicyByID(ctx, p.ID)
}

// UpdateIMAPolicy validates, signs and stores a document as the next
// version of the policy, which the next report of its hosts uses.
func (s *Service) UpdateIMAPolicy(ctx context.Context, ref string, description *string, raw []byte) (store.IMAPolicy, error) {
	if description != nil && (len(*description) > maxDescription || !printable(*description)) {
		return store.IMAPolicy{}, inputErrorf("description must be at most %d printable characters", maxDescription)
	}
	doc, err := parseIMAPolicy(raw)
	if err != nil {
		return store.IMAPolicy{}, err
	}
	// Concurrent updates each store a version: one that lost the race for
	// a version number signs the next one.
	for attempt := 0; ; attempt++ {
		p, err := s.imaPolicyByRef(ctx, ref)
		if err != nil {
			return store.IMAPolicy{}, err
		}
		v, err := s.signIMAPolicy(ctx, p, p.LatestVersion+1, doc, s.cfg.Now().UTC())
		if err != nil {
			return store.IMAPolicy{}, err
		}
		err = s.store.AddIMAPolicyVersion(ctx, v, description)
		if errors.Is(err, store.ErrConflict) && attempt < maxUpdateAttempts {
			continue
		} else if err != nil {
			return store.IMAPolicy{}, err
		}
		return s.store.IMAPolicyByID(ctx, p.ID)
	}
}

// maxUpdateAttempts bounds the retries of an update that lost a race.
const maxUpdateAttempts = 5

// imaPolicyByRef finds a policy by id, else by name.
func (s *Service) imaPolicyByRef(ctx context.Context, ref string) (store.IMAPolicy, error) {
	p, err := s.store.IMAPolicyByID(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return s.store.IMAPolicyByName(ctx, ref)
	}
	return p, err
}

// assignmentIDs resolves the hosts (by id or name) and flavor groups (by
// name) of an assignment request.
func (s *Service) assignmentIDs(ctx context.Context, in restapi.IMAPolicyAssignment) (store.IMAPolicyAssignments, error) {
	var a store.IMAPolicyAssignments
	if len(in.HostIDs)+len(in.HostNames)+len(in.FlavorGroupNames) == 0 {
		return a, inputErrorf("name at least one of host_ids, host_names and flavorgroup_names")
	}
	for _, id := range in.HostIDs {
		if _, err := s.store.HostByID(ctx, id); err != nil {
			return a, err
		}
		a.HostIDs = append(a.HostIDs, id)
	}
	for _, name := range in.HostNames {
		h, err := s.store.HostByName(ctx, name)
		if err != nil {
			return a, err
		}
		a.HostIDs = append(a.HostIDs, h.ID)
	}
	for _, name := range in.FlavorGroupNames {
		g, err := s.store.FlavorGroupByName(ctx, name)
		if err != nil {
			return a, err
		}
		a.GroupIDs = append(a.GroupIDs, g.ID)
	}
	return a, nil
}

// imaPolicyView shows a policy with its assignments; with a version, its
// document and signature too.
func (s *Service) imaPolicyView(r *http.Request, p store.IMAPolicy, v *store.IMAPolicyVersion) (restapi.IMAPolicy, error) {
	ctx := r.Context()
	out := restapi.IMAPolicy{ID: p.ID, Name: p.Name, Description: p.Description, Version: p.LatestVersion,
		LatestVersion: p.LatestVersion, Digest: "sha256:" + hex.EncodeToString(p.LatestSHA256),
		Created: p.CreatedAt, Updated: p.UpdatedAt, HostIDs: []string{}, FlavorGroupNames: []string{}}
	if v != nil {
		out.Version, out.Digest = v.Version, documentDigest(v.Document)
		out.Policy, out.Signature = v.Document, v.Signature
	}
	a, err := s.store.IMAPolicyAssignmentsOf(ctx, p.ID)
	if err != nil {
		return out, err
	}
	out.HostIDs = append(out.HostIDs, a.HostIDs...)
	if len(a.GroupIDs) > 0 {
		names, err := s.groupNames(r)
		if err != nil {
			return out, err
		}
		for _, id := range a.GroupIDs {
			out.FlavorGroupNames = append(out.FlavorGroupNames, names[id])
		}
		slices.Sort(out.FlavorGroupNames)
	}
	return out, nil
}

func (s *Service) writeIMAPolicy(w http.ResponseWriter, r *http.Request, status int, p store.IMAPolicy) error {
	v, err := s.imaPolicyView(r, p, nil)
	if err != nil {
		return err
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", "/hvs/v2/ima-policies/"+p.ID)
	}
	api.WriteJSON(w, status, v)
	return nil
}

func (s *Service) createIMAPolicy(w http.ResponseWriter, r *http.Request) error {
	var in restapi.IMAPolicyRequest
	if err := api.DecodeJSON(w, r, &in, maxIMAPolicyRequest); err != nil {
		return err
	}
	description := ""
	if in.Description != nil {
		description = *in.Description
	}
	p, err := s.CreateIMAPolicy(r.Context(), in.Name, description, in.Policy)
	if err != nil {
		return err
	}
	return s.writeIMAPolicy(w, r, http.StatusCreated, p)
}

func (s *Service) updateIMAPolicy(w http.ResponseWriter, r *http.Request) error {
	var in restapi.IMAPolicyRequest
	if err := api.DecodeJSON(w, r, &in, maxIMAPolicyRequest); err != nil {
		return err
	}
	ctx := r.Context()
	if in.Name != "" {
		p, err := s.imaPolicyByRef(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		if in.Name != p.Name {
			return inputErrorf("name %q: a policy cannot be renamed (it is %q)", in.Name, p.Name)
		}
	}
	p, err := s.UpdateIMAPolicy(ctx, r.PathValue("id"), in.Description, in.Policy)
	if err != nil {
		return err
	}
	return s.writeIMAPolicy(w, r, http.StatusOK, p)
}

func (s *Service) searchIMAPolicies(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.store.ListIMAPolicies(r.Context())
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("nameEqualTo")
	out := restapi.IMAPolicyList{Policies: []restapi.IMAPolicy{}}
	for _, p := range ps {
		if name != "" && p.Name != name {
			continue
		}
		v, err := s.imaPolicyView(r, p, nil)
		if err != nil {
			return err
		}
		out.Policies = append(out.Policies, v)
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) getIMAPolicy(w http.ResponseWriter, r *http.Request) error {
	var version int64
	if q := r.URL.Query().Get("version"); q != "" {
		n, err := strconv.ParseInt(q, 10, 64)
		if err != nil || n < 1 {
			return inputErrorf("version must be a positive integer, got %q", q)
		}
		version = n
	}
	ctx := r.Context()
	p, err := s.imaPolicyByRef(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.store.IMAPolicyVersion(ctx, p.ID, version)
	if err != nil {
		return err
	}
	out, err := s.imaPolicyView(r, p, &v)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) deleteIMAPolicy(w http.ResponseWriter, r *http.Request) error {
	force, err := boolParam(r.URL.Query(), "force")
	if err != nil {
		return err
	}
	ctx := r.Context()
	p, err := s.imaPolicyByRef(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteIMAPolicy(ctx, p.ID, force != nil && *force); errors.Is(err, store.ErrConflict) {
		return api.Errorf(api.KindConflict, "ima policy %q is assigned to hosts or flavor groups: unassign it first, or delete with ?force=true", p.Name)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) assignIMAPolicy(w http.ResponseWriter, r *http.Request) error {
	return s.changeAssignments(w, r, func(ctx context.Context, id string, a store.IMAPolicyAssignments) error {
		return s.store.AssignIMAPolicy(ctx, id, a)
	})
}

func (s *Service) unassignIMAPolicy(w http.ResponseWriter, r *http.Request) error {
	return s.changeAssignments(w, r, func(ctx context.Context, id string, a store.IMAPolicyAssignments) error {
		_, err := s.store.UnassignIMAPolicy(ctx, id, a)
		return err
	})
}

func (s *Service) changeAssignments(w http.ResponseWriter, r *http.Request,
	change func(ctx context.Context, id string, a store.IMAPolicyAssignments) error) error {
	var in restapi.IMAPolicyAssignment
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	ctx := r.Context()
	p, err := s.imaPolicyByRef(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	a, err := s.assignmentIDs(ctx, in)
	if err != nil {
		return err
	}
	if err := change(ctx, p.ID, a); err != nil {
		return err
	}
	return s.writeIMAPolicy(w, r, http.StatusOK, p)
}
