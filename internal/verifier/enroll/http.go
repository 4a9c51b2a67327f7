package enroll

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/restapi"
	"trustedcompute.io/tc/internal/verifier/agentclient"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/store"
)

// Service is the AAS service the enrollment permissions belong to.
const Service = "HVS"

// routes is the one table of enrollment's routes and permissions.
var routes = api.Table[*Enroller]{
	route(http.MethodPost, "/hvs/v2/tpm-endorsements", "tpm_endorsements:create:*", (*Enroller).createEndorsement),
	route(http.MethodGet, "/hvs/v2/tpm-endorsements", "tpm_endorsements:search:*", (*Enroller).listEndorsements),
	route(http.MethodGet, "/hvs/v2/tpm-endorsements/{id}", "tpm_endorsements:retrieve:*", (*Enroller).getEndorsement),
	route(http.MethodDelete, "/hvs/v2/tpm-endorsements/{id}", "tpm_endorsements:delete:*", (*Enroller).deleteEndorsement),
	route(http.MethodPost, "/hvs/v2/aik-enrollments", "aik_enrollments:create:*", (*Enroller).createEnrollment),
	route(http.MethodGet, "/hvs/v2/aik-enrollments/{hostId}", "aik_enrollments:retrieve:*", (*Enroller).getEnrollment),
}

// route binds a route, under Service, to its handler.
func route(method, pattern, rule string, h func(*Enroller, http.ResponseWriter, *http.Request) error) api.Entry[*Enroller] {
	return api.Entry[*Enroller]{Route: api.Route{Method: method, Pattern: pattern, Service: Service, Rule: rule}, Handle: h}
}

// Routes lists the HTTP routes of enrollment with their permissions.
func Routes() []api.Route { return routes.Routes() }

// Register adds the routes to mux, each wrapped with require(Service, its
// rule) (the AAS middleware; authentication must run before it).
func (e *Enroller) Register(mux *http.ServeMux, require func(service, rule string) func(http.Handler) http.Handler) {
	routes.Register(mux, e, require, func(err error) error { return err }, e.logger)
}

// Limits of the endorsement fields.
const (
	maxDescription = 1024
	maxIssuer      = 1024
)

// endorsementRequest is the body of POST /hvs/v2/tpm-endorsements.
type endorsementRequest struct {
	HardwareUUID string `json:"hardware_uuid"`
	// Issuer names who vouches for the EK (the shape of the ISecL API). It
	// is checked but not kept: the operator's registration is the trust.
	Issuer      string `json:"issuer,omitempty"`
	Description string `json:"description"`
	// EKPublicKey is the EK's public key as a PEM "PUBLIC KEY" (SPKI).
	EKPublicKey string `json:"ek_public_key"`
}

// Endorsement is a registered EK as the API shows it.
type Endorsement struct {
	ID                string    `json:"id"`
	HardwareUUID      string    `json:"hardware_uuid"`
	Description       string    `json:"description"`
	EKPublicKeySHA256 string    `json:"ek_public_key_sha256"`
	Created           time.Time `json:"created"`
}

// EndorsementList is the body of GET /hvs/v2/tpm-endorsements.
type EndorsementList struct {
	Endorsements []Endorsement `json:"tpm_endorsements"`
}

func endorsementView(r store.EKRegistration) Endorsement {
	return Endorsement{ID: r.ID, HardwareUUID: r.HardwareUUID, Description: r.Description,
		EKPublicKeySHA256: r.EKPublicSHA256, Created: r.CreatedAt}
}

func (e *Enroller) createEndorsement(w http.ResponseWriter, r *http.Request) error {
	var in endorsementRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	reg, err := in.registration()
	if err != nil {
		return err
	}
	if reg.ID, err = randomID(); err != nil {
		return err
	}
	reg.CreatedAt = e.cfg.Now().UTC().Truncate(time.Microsecond)
	if err := e.store.CreateEKRegistration(r.Context(), reg); err != nil {
		if errors.Is(err, store.ErrConflict) {
			err = api.Wrap(api.KindConflict, err, "this ek public key is registered already")
		}
		return err
	}
	api.WriteCreated(w, "/hvs/v2/tpm-endorsements/"+reg.ID, endorsementView(reg))
	return nil
}

// registration checks the request and returns the registration it asks for
// (without ID and time).
func (in endorsementRequest) registration() (store.EKRegistration, error) {
	var problems []string
	hardwareUUID, ok := normalizeUUID(in.HardwareUUID)
	if !ok {
		problems = append(problems, "hardware_uuid must be a UUID")
	}
	if len(in.Description) > maxDescription || !utf8.ValidString(in.Description) {
		problems = append(problems, fmt.Sprintf("description must be valid UTF-8 of at most %d bytes", maxDescription))
	}
	if len(in.Issuer) > maxIssuer || !utf8.ValidString(in.Issuer) {
		problems = append(problems, fmt.Sprintf("issuer must be valid UTF-8 of at most %d bytes", maxIssuer))
	}
	der, digest, err := ParseEKPublicKeyPEM([]byte(in.EKPublicKey))
	if err != nil {
		problems = append(problems, "ek_public_key: "+err.Error())
	}
	if len(problems) > 0 {
		return store.EKRegistration{}, api.Errorf(api.KindBadRequest, "%s", strings.Join(problems, "; "))
	}
	return store.EKRegistration{HardwareUUID: hardwareUUID, Description: in.Description, EKPublicSHA256: digest, EKPublic: der}, nil
}

// ParseEKPublicKeyPEM parses one PEM "PUBLIC KEY" block (an RSA or ECDSA
// SubjectPublicKeyInfo) and returns its canonical DER and the lower-hex
// SHA-256 of that DER: the digest Enroll looks a certificate-less EK up by.
func ParseEKPublicKeyPEM(b []byte) (der []byte, digest string, err error) {
	block, rest := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, "", errors.New(`want a PEM block of type "PUBLIC KEY"`)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, "", errors.New("trailing data after the PEM block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("parse public key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("rsa key of %d bits is too small", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
	default:
		return nil, "", fmt.Errorf("unsupported key type %T, want RSA or ECDSA", key)
	}
	return canonicalSPKI(key)
}

func canonicalSPKI(key crypto.PublicKey) ([]byte, string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return nil, "", fmt.Errorf("encode public key: %w", err)
	}
	digest, err := spkiDigest(key)
	if err != nil {
		return nil, "", err
	}
	return der, digest, nil
}

// normalizeUUID accepts a UUID in its 36-character form, in either case,
// and returns it in lower case.
func normalizeUUID(s string) (string, bool) {
	if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
		return "", false
	}
	return strings.ToLower(s), true
}

func (e *Enroller) listEndorsements(w http.ResponseWriter, r *http.Request) error {
	regs, err := e.store.ListEKRegistrations(r.Context())
	if err != nil {
		return err
	}
	out := EndorsementList{Endorsements: make([]Endorsement, 0, len(regs))}
	for _, reg := range regs {
		out.Endorsements = append(out.Endorsements, endorsementView(reg))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

// getEndorsement looks the id up in the list: the store has no lookup by id,
// and registrations are few (one per certificate-less TPM).
func (e *Enroller) getEndorsement(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	regs, err := e.store.ListEKRegistrations(r.Context())
	if err != nil {
		return err
	}
	for _, reg := range regs {
		if reg.ID == id {
			api.WriteJSON(w, http.StatusOK, endorsementView(reg))
			return nil
		}
	}
	return api.Errorf(api.KindNotFound, "no tpm endorsement with id %q", id)
}

func (e *Enroller) deleteEndorsement(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := e.store.DeleteEKRegistration(r.Context(), id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.Wrap(api.KindNotFound, err, fmt.Sprintf("no tpm endorsement with id %q", id))
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func enrollmentView(enr store.AKEnrollment) restapi.AKEnrollment {
	return restapi.AKEnrollment{
		HostID:        enr.HostID,
		AKName:        hex.EncodeToString(enr.AKName),
		AKCertificate: string(pem.EncodeToMemory(&pem.Block{Type: pemCert, Bytes: enr.AKCertificate})),
		Created:       enr.CreatedAt,
	}
}

func (e *Enroller) createEnrollment(w http.ResponseWriter, r *http.Request) error {
	var in restapi.AKEnrollmentRequest
	if err := api.DecodeJSON(w, r, &in, 0); err != nil {
		return err
	}
	if err := bus.ValidateHostID(in.HostID); err != nil {
		return api.Wrap(api.KindBadRequest, err, "host_id: "+err.Error())
	}
	enr, err := e.Enroll(r.Context(), in.HostID)
	if err != nil {
		return enrollError(in.HostID, err)
	}
	api.WriteCreated(w, "/hvs/v2/aik-enrollments/"+enr.HostID, enrollmentView(enr))
	return nil
}

// enrollError gives an Enroll error its API kind: a refusal is 403 with its
// reason, an unreachable agent 503, a silent one 504, an AK enrolled for
// another host 409.
func enrollError(hostID string, err error) error {
	var (
		refused  *RefusedError
		agentErr *agentclient.AgentError
	)
	switch {
	case errors.As(err, &refused):
		return api.Wrap(api.KindForbidden, err, fmt.Sprintf("ak enrollment refused: %s: %s", refused.Reason, refused.Detail))
	case errors.Is(err, bus.ErrInvalidHostID):
		return api.Wrap(api.KindBadRequest, err, "host_id: "+err.Error())
	case errors.Is(err, agentclient.ErrTimeout):
		return api.Wrap(api.KindGatewayTimeout, err, fmt.Sprintf("the trust agent of host %q did not answer in time", hostID))
	case errors.Is(err, agentclient.ErrNoResponders):
		return api.Wrap(api.KindUnavailable, err, fmt.Sprintf("no trust agent of host %q is connected", hostID))
	case errors.Is(err, agentclient.ErrBadReply):
		return api.Wrap(api.KindUnavailable, err, fmt.Sprintf("the trust agent of host %q sent a malformed reply", hostID))
	case errors.As(err, &agentErr):
		return api.Wrap(api.KindUnavailable, err, fmt.Sprintf("the trust agent of host %q answered %s: %s", hostID, agentErr.Code, agentErr.Message))
	case errors.Is(err, ErrAKInUse):
		return api.Wrap(api.KindConflict, err, "the attestation key of this host is enrolled for another host")
	}
	return err
}

func (e *Enroller) getEnrollment(w http.ResponseWriter, r *http.Request) error {
	hostID := r.PathValue("hostId")
	enr, err := e.store.AKEnrollmentByHost(r.Context(), hostID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = api.Wrap(api.KindNotFound, err, fmt.Sprintf("host %q has no enrolled ak", hostID))
		}
		return err
	}
	api.WriteJSON(w, http.StatusOK, enrollmentView(enr))
	return nil
}
