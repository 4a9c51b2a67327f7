package report

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
)

// EAR profiles (draft-ietf-rats-ear). Both carry the same appraisal; they
// differ in how the claims are spelled.
const (
	// ProfileVeraison is the profile of the Veraison EAR library (the
	// default): ear.verifier-id, ear.status, ear.trustworthiness-vector and
	// one ear.appraisal-policy-id string per submodule.
	ProfileVeraison = "tag:github.com,2023:veraison/ear"
	// ProfileEAR04 is the profile of draft-ietf-rats-ear-04: ear_verifier_id,
	// ear_status, ear_trustworthiness_vector and an ear_appraisal_policy_ids
	// array per submodule.
	ProfileEAR04 = "tag:ietf.org,2026:rats/ear#04"
)

// Developer is the developer of ear.verifier-id.
const Developer = "trustedcompute.io"

// PolicyIDPrefix starts every appraisal policy ID: a part's policy is
// PolicyIDPrefix + "part/<PART>", a flavor's PolicyIDPrefix + "flavor/<id>".
const PolicyIDPrefix = "tag:trustedcompute.io,2026:"

// EAR statuses: the trust tier of a submodule.
const (
	StatusNone            = "none"
	StatusAffirming       = "affirming"
	StatusWarning         = "warning"
	StatusContraindicated = "contraindicated"
)

// AR4SI trustworthiness claims (draft-ietf-rats-ar4si).
const (
	ClaimInstanceIdentity = "instance-identity"
	ClaimConfiguration    = "configuration"
	ClaimExecutables      = "executables"
	ClaimFileSystem       = "file-system"
	ClaimHardware         = "hardware"
	ClaimRuntimeOpaque    = "runtime-opaque"
	ClaimStorageOpaque    = "storage-opaque"
	ClaimSourcedData      = "sourced-data"
)

// AR4SI claim values this package uses. The tier of a value is: below 2
// none, 2 to 31 affirming, 32 to 95 warning, 96 and up contraindicated.
const (
	// TVAffirming: recognised and approved (instance, hardware,
	// configuration; executables at boot and run time).
	TVAffirming = 2
	// TVApprovedBoot: executables approved at boot; run time not covered.
	TVApprovedBoot = 3
	// TVWarning: an unsafe configuration.
	TVWarning = 32
	// TVContraindicated: measurements contradict the reference.
	TVContraindicated = 96
	// TVUnrecognizedInstance: the attestation key is not the enrolled one.
	TVUnrecognizedInstance = 97
	// TVCryptoFailed: cryptographic validation of the evidence failed.
	TVCryptoFailed = 99
)

// earNames spells the claims of one profile.
type earNames struct {
	verifierID, status, vector, policy string
	policyList                         bool
}

var profiles = map[string]earNames{
	ProfileVeraison: {"ear.verifier-id", "ear.status", "ear.trustworthiness-vector", "ear.appraisal-policy-id", false},
	ProfileEAR04:    {"ear_verifier_id", "ear_status", "ear_trustworthiness_vector", "ear_appraisal_policy_ids", true},
}

// earParts are the submodules every EAR carries; other evaluated parts are
// added.
var earParts = []flavor.Part{flavor.PartPlatform, flavor.PartOS, flavor.PartIMA}

// appraisal is the EAR view of one part.
type appraisal struct {
	status string
	vector map[string]int // nil for a part that was not evaluated
	policy []string
}

// EAR returns the appraisal of r as an EAR attestation result token: a
// JWT (compact JWS, typ TypeEAR) signed like Sign, whose claims are
// eat_profile (profile; ProfileVeraison when empty), iat (now), exp (the
// report's expiration), sub (host ID), jti (report ID), eat_nonce (the
// quote nonce, base64url, when 8 to 64 bytes), the verifier ID and one
// submodule per part: PLATFORM, OS and IMA always (status none when not
// evaluated), and any other evaluated part.
//
// A submodule's status is the tier of the worst claim of its
// trustworthiness vector; a part that is not trusted is always
// contraindicated, and its vector then holds a contraindicated claim. The
// vector: instance-identity from the evidence faults outside the parts
// (crypto-failed for a bad quote, unrecognized-instance for a wrong AK);
// hardware (PLATFORM) likewise; executables approved-boot (3) for trusted
// PLATFORM and OS parts and approved (2) for a trusted IMA part;
// configuration for PLATFORM and OS. A rule fault on PCR 1, 3, 5, 6, 7 or 8
// makes configuration contraindicated; any other rule fault (other PCRs,
// IMA files, missing or untrusted flavors) executables; event log and IMA
// replay faults make executables of their part crypto-failed. Secure Boot
// off in the quoted PCR 7 events makes PLATFORM configuration
// contraindicated; an efivar claim of off while PCR 7 says on is a warning.
func (s *Signer) EAR(r *Report, profile string, now time.Time) (string, error) {
	if r == nil {
		return "", errors.New("ear: no report")
	}
	if profile == "" {
		profile = ProfileVeraison
	}
	names, ok := profiles[profile]
	if !ok {
		return "", fmt.Errorf("ear for report %q: unknown profile %q", r.ID, profile)
	}
	submods := map[string]any{}
	for part, a := range appraisals(r) {
		sm := map[string]any{names.status: a.status}
		if a.vector != nil {
			sm[names.vector] = a.vector
		}
		if names.policyList {
			sm[names.policy] = a.policy
		} else {
			sm[names.policy] = strings.Join(a.policy, " ")
		}
		submods[string(part)] = sm
	}
	claims := map[string]any{
		"eat_profile":    profile,
		"iat":            now.Unix(),
		names.verifierID: map[string]string{"developer": Developer, "build": s.build},
		"submods":        submods,
	}
	if !r.Expiration.IsZero() {
		claims["exp"] = r.Expiration.Unix()
	}
	if r.HostID != "" {
		claims["sub"] = r.HostID
	}
	if r.ID != "" {
		claims["jti"] = r.ID
	}
	if n := len(r.Nonce); n >= 8 && n <= 64 {
		claims["eat_nonce"] = base64.RawURLEncoding.EncodeToString(r.Nonce)
	}
	tok, _, err := s.signJSON(TypeEAR, claims)
	if err != nil {
		return "", fmt.Errorf("ear for report %q: %w", r.ID, err)
	}
	return tok, nil
}

// appraisals maps every part of r to its EAR view.
func appraisals(r *Report) map[flavor.Part]appraisal {
	out := map[flavor.Part]appraisal{}
	for _, p := range earParts {
		out[p] = appraisal{status: StatusNone, policy: []string{PolicyIDPrefix + "part/" + string(p)}}
	}
	for p, pt := range r.TrustInformation.FlavorsTrust {
		out[p] = appraisePart(r, p, pt)
	}
	return out
}

func appraisePart(r *Report, p flavor.Part, pt flavor.PartTrust) appraisal {
	v := map[string]int{}
	worse := func(claim string, val int) {
		if cur, ok := v[claim]; !ok || val > cur {
			v[claim] = val
		}
	}
	// What the evidence outside the parts says.
	identity := TVAffirming
	for _, f := range r.Faults {
		switch claim, val, part := evidenceFault(f); {
		case claim == ClaimInstanceIdentity:
			identity = max(identity, val)
		case part == p:
			worse(claim, val)
		}
	}
	worse(ClaimInstanceIdentity, identity)
	switch p {
	case flavor.PartPlatform:
		worse(ClaimHardware, identity)
		worse(ClaimExecutables, TVApprovedBoot)
		worse(ClaimConfiguration, TVAffirming)
		sb := r.HostInfo.SecureBoot
		switch {
		case !r.HostInfo.HardwareFeatures.UEFI.Meta.SecureBootEnabled:
			worse(ClaimConfiguration, TVContraindicated)
		case sb.Efivar != nil && !*sb.Efivar:
			worse(ClaimConfiguration, TVWarning)
		}
	case flavor.PartOS:
		worse(ClaimExecutables, TVApprovedBoot)
		worse(ClaimConfiguration, TVAffirming)
	case flavor.PartIMA:
		worse(ClaimExecutables, TVAffirming)
	}
	var ids []string
	for _, rr := range pt.Rules {
		if rr.FlavorID != "" {
			ids = append(ids, rr.FlavorID)
		}
		for _, f := range rr.Faults {
			worse(partFault(p, f))
		}
	}
	if !pt.Trust && slices.Max(slices.Collect(maps.Values(v))) < TVContraindicated {
		// An untrusted part is contraindicated, even when no fault says
		// why (no rule result at all).
		worse(ClaimExecutables, TVContraindicated)
	}
	slices.Sort(ids)
	policy := []string{PolicyIDPrefix + "part/" + string(p)}
	for _, id := range slices.Compact(ids) {
		policy = append(policy, PolicyIDPrefix+"flavor/"+id)
	}
	return appraisal{status: tier(slices.Max(slices.Collect(maps.Values(v)))), vector: v, policy: policy}
}

// evidenceFault maps a fault outside the parts to a claim and the part it
// concerns (empty for the instance as a whole).
func evidenceFault(f appraise.Fault) (claim string, val int, part flavor.Part) {
	switch f.Name {
	case appraise.FaultQuoteMagic, appraise.FaultQuoteType, appraise.FaultQuoteNonce,
		appraise.FaultQuoteSignature, appraise.FaultQuotePCRDigest, appraise.FaultQuotePCRSelection,
		appraise.FaultEvidenceUnparsable:
		return ClaimInstanceIdentity, TVCryptoFailed, ""
	case appraise.FaultAKMismatch, appraise.FaultAKInvalid:
		return ClaimInstanceIdentity, TVUnrecognizedInstance, ""
	case appraise.FaultEventLogReplay, appraise.FaultEventLogUnparsable:
		if f.PCRIndex != nil && (*f.PCRIndex == 8 || *f.PCRIndex == 9) {
			return ClaimExecutables, TVCryptoFailed, flavor.PartOS
		}
		return ClaimExecutables, TVCryptoFailed, flavor.PartPlatform
	case appraise.FaultSecureBootUnparsable:
		return ClaimConfiguration, TVCryptoFailed, flavor.PartPlatform
	case appraise.FaultIMAReplay, appraise.FaultIMAUnparsable:
		return ClaimExecutables, TVCryptoFailed, flavor.PartIMA
	}
	// Missing evidence, a lost connection or a fault this mapping does not
	// know: nothing about the instance can be affirmed.
	return ClaimInstanceIdentity, TVContraindicated, ""
}

// partFault maps a fault of a part's rule to a claim.
func partFault(p flavor.Part, f appraise.Fault) (string, int) {
	if p == flavor.PartPlatform || p == flavor.PartOS {
		if f.PCRIndex != nil {
			switch *f.PCRIndex {
			case 1, 3, 5, 6, 7, 8:
				return ClaimConfiguration, TVContraindicated
			}
		}
	}
	return ClaimExecutables, TVContraindicated
}

// tier names the trust tier of an AR4SI claim value.
func tier(v int) string {
	switch {
	case v >= TVContraindicated:
		return StatusContraindicated
	case v >= TVWarning:
		return StatusWarning
	case v >= TVAffirming:
		return StatusAffirming
	}
	return StatusNone
}

// VerifyEAR checks an EAR token made by EAR at now and returns its claims,
// with numbers as json.Number. Besides the checks of Verify (typ TypeEAR
// instead of TypeReport), the claims must be those of a known profile:
// eat_profile, an integer iat, the verifier ID with developer and build,
// at least one submodule, each with a known status and a vector of
// integer claims from -128 to 127; an exp claim must not have passed. The
// errors wrap ErrMalformed, ErrAlgorithmNotAllowed, ErrCertificateUntrusted,
// ErrSignatureInvalid, ErrClaimsInvalid or ErrExpired.
func VerifyEAR(token string, roots *x509.CertPool, now time.Time) (map[string]any, error) {
	return verifyEAR(token, roots, now, nil)
}

func verifyEAR(token string, roots *x509.CertPool, now time.Time, cache *headerCache) (map[string]any, error) {
	payload, err := verifyJWS(token, TypeEAR, roots, now, cache)
	if err != nil {
		return nil, fmt.Errorf("verify ear: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, fmt.Errorf("verify ear: %w", malformed("claims are not a JSON object"))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("verify ear: %w", malformed("trailing data after the claims"))
	}
	if err := checkClaims(claims, now); err != nil {
		return nil, fmt.Errorf("verify ear: %w", err)
	}
	return claims, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrClaimsInvalid, fmt.Sprintf(format, args...))
}

func checkClaims(c map[string]any, now time.Time) error {
	profile, _ := c["eat_profile"].(string)
	names, ok := profiles[profile]
	if !ok {
		return invalid("eat_profile %q is unknown", profile)
	}
	if _, err := intClaim(c, "iat"); err != nil {
		return err
	}
	if _, ok := c["exp"]; ok {
		exp, err := intClaim(c, "exp")
		if err != nil {
			return err
		}
		if now.Unix() > exp {
			return fmt.Errorf("%w at %s", ErrExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
		}
	}
	vid, _ := c[names.verifierID].(map[string]any)
	if dev, _ := vid["developer"].(string); dev == "" {
		return invalid("%s has no developer", names.verifierID)
	}
	if build, _ := vid["build"].(string); build == "" {
		return invalid("%s has no build", names.verifierID)
	}
	submods, _ := c["submods"].(map[string]any)
	if len(submods) == 0 {
		return invalid("no submods")
	}
	for name, raw := range submods {
		sm, ok := raw.(map[string]any)
		if !ok {
			return invalid("submod %q is not an object", name)
		}
		switch st, _ := sm[names.status].(string); st {
		case StatusNone, StatusAffirming, StatusWarning, StatusContraindicated:
		default:
			return invalid("submod %q: %s %q is unknown", name, names.status, st)
		}
		vec, ok := sm[names.vector]
		if !ok {
			continue
		}
		tv, ok := vec.(map[string]any)
		if !ok {
			return invalid("submod %q: %s is not an object", name, names.vector)
		}
		for claim := range tv {
			v, err := intClaim(tv, claim)
			if err != nil || v < -128 || v > 127 {
				return invalid("submod %q: claim %q is not an AR4SI value", name, claim)
			}
		}
	}
	return nil
}

// intClaim reads an integer claim.
func intClaim(c map[string]any, name string) (int64, error) {
	n, ok := c[name].(json.Number)
	if !ok {
		return 0, invalid("%s is not a number", name)
	}
	v, err := n.Int64()
	if err != nil {
		return 0, invalid("%s is not an integer", name)
	}
	return v, nil
}
