package report

import (
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
)

func TestEARStatuses(t *testing.T) {
	ca, s := newP256Signer(t)
	now := t0.Add(time.Minute)
	type vec = map[string]int
	tests := []struct {
		name   string
		mutate func(*Report)
		want   map[string]string
		// wantVec holds claims that must have exactly these values.
		wantVec map[string]vec
	}{
		{
			name:   "a trusted report affirms every part",
			mutate: func(*Report) {},
			want:   map[string]string{"PLATFORM": StatusAffirming, "OS": StatusAffirming, "IMA": StatusAffirming},
			wantVec: map[string]vec{
				"PLATFORM": {ClaimInstanceIdentity: 2, ClaimHardware: 2, ClaimExecutables: 3, ClaimConfiguration: 2},
				"OS":       {ClaimInstanceIdentity: 2, ClaimExecutables: 3, ClaimConfiguration: 2},
				"IMA":      {ClaimInstanceIdentity: 2, ClaimExecutables: 2},
			},
		},
		{
			name:    "an unexpected IMA file contraindicates IMA only",
			mutate:  failIMA,
			want:    map[string]string{"PLATFORM": StatusAffirming, "OS": StatusAffirming, "IMA": StatusContraindicated},
			wantVec: map[string]vec{"IMA": {ClaimExecutables: TVContraindicated, ClaimInstanceIdentity: TVAffirming}},
		},
		{
			name:    "Secure Boot off in PCR 7 contraindicates the PLATFORM configuration even with a lying efivar",
			mutate:  secureBootOff,
			want:    map[string]string{"PLATFORM": StatusContraindicated, "OS": StatusAffirming, "IMA": StatusAffirming},
			wantVec: map[string]vec{"PLATFORM": {ClaimConfiguration: TVContraindicated, ClaimExecutables: 3}},
		},
		{
			name:    "an efivar that says off while PCR 7 says on is a warning",
			mutate:  func(r *Report) { r.HostInfo.SecureBoot.Efivar = boolp(false) },
			want:    map[string]string{"PLATFORM": StatusWarning, "OS": StatusAffirming, "IMA": StatusAffirming},
			wantVec: map[string]vec{"PLATFORM": {ClaimConfiguration: TVWarning}},
		},
		{
			name:   "a part that was not evaluated has status none",
			mutate: func(r *Report) { delete(r.TrustInformation.FlavorsTrust, flavor.PartIMA) },
			want:   map[string]string{"PLATFORM": StatusAffirming, "OS": StatusAffirming, "IMA": StatusNone},
		},
		{
			name: "a PCR 9 mismatch contraindicates the OS executables",
			mutate: func(r *Report) {
				os := r.TrustInformation.FlavorsTrust[flavor.PartOS]
				os.Trust = false
				os.Rules[0].Trusted = false
				os.Rules[0].Faults = []appraise.Fault{{Name: flavor.FaultPcrValueMismatch, PCRIndex: pcr(9), PCRBank: "SHA384"}}
				r.TrustInformation.FlavorsTrust[flavor.PartOS] = os
			},
			want:    map[string]string{"PLATFORM": StatusAffirming, "OS": StatusContraindicated, "IMA": StatusAffirming},
			wantVec: map[string]vec{"OS": {ClaimExecutables: TVContraindicated, ClaimConfiguration: TVAffirming}},
		},
		{
			name: "a bad quote signature contraindicates every evaluated part",
			mutate: func(r *Report) {
				r.Faults = []appraise.Fault{{Name: appraise.FaultQuoteSignature}}
			},
			want: map[string]string{"PLATFORM": StatusContraindicated, "OS": StatusContraindicated, "IMA": StatusContraindicated},
			wantVec: map[string]vec{
				"PLATFORM": {ClaimInstanceIdentity: TVCryptoFailed, ClaimHardware: TVCryptoFailed},
				"IMA":      {ClaimInstanceIdentity: TVCryptoFailed},
			},
		},
		{
			name: "a quote from another AK makes the instance unrecognized",
			mutate: func(r *Report) {
				r.Faults = []appraise.Fault{{Name: appraise.FaultAKMismatch}}
			},
			want:    map[string]string{"PLATFORM": StatusContraindicated, "OS": StatusContraindicated, "IMA": StatusContraindicated},
			wantVec: map[string]vec{"OS": {ClaimInstanceIdentity: TVUnrecognizedInstance}},
		},
		{
			name: "missing evidence contraindicates the instance",
			mutate: func(r *Report) {
				r.Faults = []appraise.Fault{{Name: appraise.FaultEvidenceMissing}}
			},
			want:    map[string]string{"PLATFORM": StatusContraindicated, "OS": StatusContraindicated, "IMA": StatusContraindicated},
			wantVec: map[string]vec{"IMA": {ClaimInstanceIdentity: TVContraindicated}},
		},
		{
			name: "an IMA replay fault contraindicates IMA only",
			mutate: func(r *Report) {
				r.Faults = []appraise.Fault{{Name: appraise.FaultIMAReplay, PCRIndex: pcr(10)}}
			},
			want:    map[string]string{"PLATFORM": StatusAffirming, "OS": StatusAffirming, "IMA": StatusContraindicated},
			wantVec: map[string]vec{"IMA": {ClaimExecutables: TVCryptoFailed, ClaimInstanceIdentity: TVAffirming}},
		},
		{
			name: "a part without any rule result is contraindicated",
			mutate: func(r *Report) {
				r.TrustInformation.FlavorsTrust[flavor.PartOS] = flavor.PartTrust{}
			},
			want:    map[string]string{"PLATFORM": StatusAffirming, "OS": StatusContraindicated, "IMA": StatusAffirming},
			wantVec: map[string]vec{"OS": {ClaimExecutables: TVContraindicated}},
		},
	}
	for _, profile := range []string{ProfileVeraison, ProfileEAR04} {
		names := profiles[profile]
		for _, tt := range tests {
			t.Run(profile+"/"+tt.name, func(t *testing.T) {
				r := trustedReport()
				tt.mutate(r)
				tok, err := s.EAR(r, profile, now)
				if err != nil {
					t.Fatalf("EAR: %v", err)
				}
				claims, err := VerifyEAR(tok, ca.RootPool(), now)
				if err != nil {
					t.Fatalf("VerifyEAR: %v", err)
				}
				submods := claims["submods"].(map[string]any)
				got := map[string]string{}
				for name, sm := range submods {
					got[name] = sm.(map[string]any)[names.status].(string)
				}
				if !maps.Equal(got, tt.want) {
					t.Errorf("statuses = %v, want %v", got, tt.want)
				}
				for part, want := range tt.wantVec {
					tv, _ := submods[part].(map[string]any)[names.vector].(map[string]any)
					for claim, v := range want {
						n, _ := tv[claim].(json.Number)
						if n.String() != json.Number(itoa(v)).String() {
							t.Errorf("%s %s = %v, want %d", part, claim, tv[claim], v)
						}
					}
				}
			})
		}
	}
}

func itoa(v int) string { b, _ := json.Marshal(v); return string(b) }

func TestEARClaims(t *testing.T) {
	ca, s := newP256Signer(t)
	now := t0.Add(time.Minute)
	r := trustedReport()
	tok, err := s.EAR(r, "", now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyEAR(tok, ca.RootPool(), now)
	if err != nil {
		t.Fatal(err)
	}
	if c["eat_profile"] != ProfileVeraison {
		t.Errorf("eat_profile = %v, want the default %s", c["eat_profile"], ProfileVeraison)
	}
	if c["iat"] != json.Number(itoa(int(now.Unix()))) || c["exp"] != json.Number(itoa(int(r.Expiration.Unix()))) {
		t.Errorf("iat, exp = %v, %v; want %d, %d", c["iat"], c["exp"], now.Unix(), r.Expiration.Unix())
	}
	if c["sub"] != r.HostID || c["jti"] != r.ID || c["eat_nonce"] != base64.RawURLEncoding.EncodeToString(r.Nonce) {
		t.Errorf("sub, jti, eat_nonce = %v, %v, %v", c["sub"], c["jti"], c["eat_nonce"])
	}
	vid := c["ear.verifier-id"].(map[string]any)
	if vid["developer"] != Developer || vid["build"] == "" {
		t.Errorf("ear.verifier-id = %v", vid)
	}
	platform := c["submods"].(map[string]any)["PLATFORM"].(map[string]any)
	if got := platform["ear.appraisal-policy-id"]; got != PolicyIDPrefix+"part/PLATFORM "+PolicyIDPrefix+"flavor/f-platform" {
		t.Errorf("ear.appraisal-policy-id = %v", got)
	}
	if _, err := s.EAR(r, "tag:example.com,2020:unknown", now); err == nil {
		t.Error("EAR accepted an unknown profile")
	}
}

func TestVerifyEARRefuses(t *testing.T) {
	ca, s := newP256Signer(t)
	now := t0.Add(time.Minute)
	report, _ := s.Sign(trustedReport())
	good, _ := s.EAR(trustedReport(), "", now)
	signClaims := func(c map[string]any) string {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.sign(TypeEAR, b)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := func() map[string]any {
		return map[string]any{
			"eat_profile":     ProfileVeraison,
			"iat":             now.Unix(),
			"ear.verifier-id": map[string]string{"developer": Developer, "build": "x"},
			"submods":         map[string]any{"PLATFORM": map[string]any{"ear.status": "affirming", "ear.trustworthiness-vector": map[string]int{"executables": 2}}},
		}
	}
	with := func(f func(map[string]any)) string { c := valid(); f(c); return signClaims(c) }
	other := newSigner(t, newCA(t), elliptic.P256())
	fromOtherCA, _ := other.EAR(trustedReport(), "", now)
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"a signed report in place of an EAR", report, ErrMalformed},
		{"an EAR of another CA", fromOtherCA, ErrCertificateUntrusted},
		{"an EAR whose exp has passed", good, ErrExpired},
		{"an unknown profile", with(func(c map[string]any) { c["eat_profile"] = "tag:x,2020:y" }), ErrClaimsInvalid},
		{"a profile mixing the spellings", with(func(c map[string]any) { c["eat_profile"] = ProfileEAR04 }), ErrClaimsInvalid},
		{"no iat", with(func(c map[string]any) { delete(c, "iat") }), ErrClaimsInvalid},
		{"a fractional iat", with(func(c map[string]any) { c["iat"] = 1.5 }), ErrClaimsInvalid},
		{"no verifier build", with(func(c map[string]any) { c["ear.verifier-id"] = map[string]string{"developer": "d"} }), ErrClaimsInvalid},
		{"no submods", with(func(c map[string]any) { c["submods"] = map[string]any{} }), ErrClaimsInvalid},
		{"an unknown status", with(func(c map[string]any) {
			c["submods"] = map[string]any{"OS": map[string]any{"ear.status": "fine"}}
		}), ErrClaimsInvalid},
		{"a claim value out of range", with(func(c map[string]any) {
			c["submods"] = map[string]any{"OS": map[string]any{"ear.status": "affirming", "ear.trustworthiness-vector": map[string]int{"executables": 300}}}
		}), ErrClaimsInvalid},
		{"claims that are not an object", signClaimsRaw(t, s, `[1,2]`), ErrMalformed},
		{"trailing data after the claims", signClaimsRaw(t, s, `{"iat":1} {}`), ErrMalformed},
	}
	at := map[string]time.Time{"an EAR whose exp has passed": t0.Add(2 * time.Hour)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			when := now
			if w, ok := at[tt.name]; ok {
				when = w
			}
			c, err := VerifyEAR(tt.token, ca.RootPool(), when)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("VerifyEAR = %v, %v; want error %v", c, err, tt.want)
			}
		})
	}
	if _, err := VerifyEAR(with(func(map[string]any) {}), ca.RootPool(), now); err != nil {
		t.Fatalf("VerifyEAR of the valid claims: %v", err)
	}
}

func signClaimsRaw(t *testing.T, s *Signer, payload string) string {
	t.Helper()
	tok, err := s.sign(TypeEAR, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestEARCoversOtherEvaluatedParts(t *testing.T) {
	r := trustedReport()
	r.TrustInformation.FlavorsTrust[flavor.PartSoftware] = flavor.PartTrust{Trust: true, Rules: rules(flavor.PartSoftware, "f-sw", 1)}
	got := slices.Sorted(maps.Keys(appraisals(r)))
	want := []flavor.Part{flavor.PartIMA, flavor.PartOS, flavor.PartPlatform, flavor.PartSoftware}
	if !slices.Equal(got, want) {
		t.Errorf("submods = %v, want %v", got, want)
	}
}
