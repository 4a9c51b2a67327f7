package imapolicy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"trustedcompute.io/tc/internal/appraise"
)

// Fault names of a runtime policy appraisal. They are stable: reports
// refer to them.
const (
	// ImaPolicyFileNotAllowed: a measured file's path is neither in the
	// policy's digests nor excluded, and no trusted key signed it.
	ImaPolicyFileNotAllowed = "ImaPolicyFileNotAllowed"
	// ImaPolicyDigestMismatch: the path is in the policy, with other digests.
	ImaPolicyDigestMismatch = "ImaPolicyDigestMismatch"
	// ImaPolicySignatureInvalid: the file's signature (ima-sig, version 2
	// or 3, or the appended modsig) names a trusted key but does not
	// verify over the measured digest, or does not decode.
	ImaPolicySignatureInvalid = "ImaPolicySignatureInvalid"
	// ImaPolicySignatureUntrustedKey: the file is signed by a key the
	// policy does not trust (and its digest is not allowed).
	ImaPolicySignatureUntrustedKey = "ImaPolicySignatureUntrustedKey"
	// ImaPolicyBootAggregateMismatch: the boot_aggregate entry is not the
	// hash of the quoted boot PCRs.
	ImaPolicyBootAggregateMismatch = "ImaPolicyBootAggregateMismatch"
	// ImaPolicyBufferNotAllowed: an ima-buf entry (a key added to a
	// keyring, the kexec command line, ...) the policy does not allow.
	ImaPolicyBufferNotAllowed = "ImaPolicyBufferNotAllowed"
	// ImaPolicyViolation: IMA recorded a violation (a file measured while
	// open for writing, or the reverse) on a path that is not excluded.
	ImaPolicyViolation = "ImaPolicyViolation"
	// ImaPolicyFaultsOmitted: more faults than a report keeps; this one
	// counts the rest.
	ImaPolicyFaultsOmitted = "ImaPolicyFaultsOmitted"
)

// MaxFaults is the number of faults an appraisal keeps; the rest are
// counted in one ImaPolicyFaultsOmitted fault.
const MaxFaults = 100

// bootAggregateName is the name of IMA's first entry.
const bootAggregateName = "boot_aggregate"

// Appraise appraises IMA entries against the policy. boot holds the
// quoted PCR values by bank (PCRs 0-9 for the boot_aggregate entry).
// Entries are expected to be replay-verified. The result is nil when every
// entry is allowed.
func (c *Compiled) Appraise(entries []appraise.IMAEntry, boot appraise.PCRs) []appraise.Fault {
	return c.Continue(Progress{}, entries, boot).Faults()
}

// Progress is how far the appraisal of one boot's IMA log against one
// policy has come: a later appraisal of the same boot reads only the
// entries after Entries. Keep it with the entries it covers.
type Progress struct {
	// Policy is the digest of the policy appraised against.
	Policy string `json:"policy"`
	// Entries is the number of entries appraised.
	Entries int `json:"entries"`
	// Found are the faults found, at most MaxFaults; Omitted counts the rest.
	Found   []appraise.Fault `json:"faults,omitempty"`
	Omitted int              `json:"omitted,omitempty"`
}

// Faults returns the faults found, with an ImaPolicyFaultsOmitted fault
// when there were more than MaxFaults.
func (p Progress) Faults() []appraise.Fault {
	if p.Omitted == 0 {
		return p.Found
	}
	return append(slices.Clip(p.Found), appraise.Fault{
		Name:        ImaPolicyFaultsOmitted,
		Description: fmt.Sprintf("%d more IMA entries are not allowed by the runtime policy", p.Omitted),
	})
}

// Continue appraises the entries after p.Entries and returns the progress
// over all of entries. entries must be the same boot's log that p was made
// from, grown at its end; a p of another policy, or one that covers more
// entries than there are, is ignored and the appraisal starts over. p is
// not changed.
func (c *Compiled) Continue(p Progress, entries []appraise.IMAEntry, boot appraise.PCRs) Progress {
	if p.Policy != c.digest || p.Entries > len(entries) || p.Entries < 0 {
		p = Progress{Policy: c.digest}
	}
	p.Found = slices.Clip(p.Found)
	for i := p.Entries; i < len(entries); i++ {
		f, ok := c.entry(&entries[i], i, boot)
		if ok {
			continue
		}
		if len(p.Found) < MaxFaults {
			p.Found = append(p.Found, f)
		} else {
			p.Omitted++
		}
	}
	p.Entries = len(entries)
	return p
}

// entry appraises one entry (the i-th of the log): a fault and false when
// the policy does not allow it. The allowed path allocates nothing.
func (c *Compiled) entry(e *appraise.IMAEntry, i int, boot appraise.PCRs) (appraise.Fault, bool) {
	if e.Violation() {
		if c.excluded(e.Path) {
			return appraise.Fault{}, true
		}
		return c.fault(ImaPolicyViolation, e, i, "", "IMA recorded a violation for %s (measured while open for writing, or opened for writing while measured)", e.Path), false
	}
	if e.Template == appraise.TemplateIMABuf {
		return c.buffer(e, i)
	}
	if e.Path == bootAggregateName && (e.Template == appraise.TemplateIMANG || e.Template == appraise.TemplateIMA || e.Template == appraise.TemplateIMASig || e.Template == appraise.TemplateIMAModsig) {
		if !c.bootAggregate {
			return appraise.Fault{}, true
		}
		return checkBootAggregate(e, i, boot)
	}
	if c.logHashAlg != "" && e.FileHashAlg != c.logHashAlg && !c.excluded(e.Path) {
		return c.fault(ImaPolicyDigestMismatch, e, i, "", "%s was measured with %s, the runtime policy requires %s", e.Path, e.FileHashAlg, c.logHashAlg), false
	}
	sp, listed := c.lookup(&c.files, e.Path)
	if listed && c.allowed(sp, e.FileHashAlg, e.FileHash) {
		return appraise.Fault{}, true
	}
	if c.excluded(e.Path) {
		return appraise.Fault{}, true
	}
	// A signature by a trusted key allows the file: the security.ima one
	// or the appended one. When neither does, the first one's fault says
	// why.
	var sigFault appraise.Fault
	signed := false
	if len(e.Signature) > 0 {
		var ok bool
		if sigFault, ok, signed = c.signature(e, i); signed && ok {
			return appraise.Fault{}, true
		}
	}
	if len(e.Modsig) > 0 {
		f, ok := c.modsig(e, i)
		if ok {
			return appraise.Fault{}, true
		}
		if !signed {
			sigFault, signed = f, true
		}
	}
	if signed {
		return sigFault, false
	}
	if listed {
		return c.fault(ImaPolicyDigestMismatch, e, i, c.digests(sp), "%s was measured with a digest the runtime policy does not allow", e.Path), false
	}
	return c.fault(ImaPolicyFileNotAllowed, e, i, "", "%s is not in the runtime policy", e.Path), false
}

// modsig appraises a file by its appended signature (ima-modsig): a
// signature by a trusted key over the entry's d-modsig digest.
func (c *Compiled) modsig(e *appraise.IMAEntry, i int) (appraise.Fault, bool) {
	h, ok := appraise.IMAHashAlg(e.ModsigHashAlg)
	if !ok || len(e.ModsigHash) != h.Size() {
		return c.fault(ImaPolicySignatureInvalid, e, i, "", "%s: the entry's d-modsig is not a sha1, sha256, sha384 or sha512 digest, its appended signature (modsig) cannot be checked", e.Path), false
	}
	// A pair seen verified before (its digest's size names its algorithm)
	// is not parsed again.
	key := sigCacheKey(e.ModsigHash, e.Modsig)
	if c.sigs.has(key) {
		return appraise.Fault{}, true
	}
	m, err := parseModsig(e.Modsig)
	if err != nil {
		return c.fault(ImaPolicySignatureInvalid, e, i, "", "%s: its appended signature (modsig) does not decode: %v", e.Path, err), false
	}
	if h != m.hash {
		return c.fault(ImaPolicySignatureInvalid, e, i, "", "%s: the appended signature (modsig) is over a %v digest, the entry's d-modsig is %s", e.Path, m.hash, e.ModsigHashAlg), false
	}
	if m.authAttrs != nil {
		// The kernel's d-modsig is then the digest of the attributes
		// (after it checked their messageDigest against the file).
		d := m.hash.New()
		d.Write(m.authAttrs)
		if !bytes.Equal(d.Sum(nil), e.ModsigHash) {
			return c.fault(ImaPolicySignatureInvalid, e, i, "", "%s: the entry's d-modsig is not the digest of its appended signature's authenticated attributes", e.Path), false
		}
	}
	var keys []*verificationKey
	for _, k := range c.signers {
		if m.signs(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return c.fault(ImaPolicySignatureUntrustedKey, e, i, "", "%s: its digest is not allowed and its appended signature (modsig) is by %s, a key the policy does not trust", e.Path, m.signerName()), false
	}
	for _, k := range keys {
		if k.verifyModsig(&m, e.ModsigHash) {
			c.sigs.add(key)
			return appraise.Fault{}, true
		}
	}
	return c.fault(ImaPolicySignatureInvalid, e, i, "", "%s: the appended signature (modsig) does not verify over its d-modsig digest with the trusted key of %s", e.Path, m.signerName()), false
}

// signature appraises a file by its ima-sig signature; signed is false
// when the field holds no signature (a bare digest in security.ima).
func (c *Compiled) signature(e *appraise.IMAEntry, i int) (f appraise.Fault, ok, signed bool) {
	s, err := parseSignature(e.Signature)
	if errors.Is(err, errNotSignature) {
		return appraise.Fault{}, false, false
	}
	if err != nil {
		return c.fault(ImaPolicySignatureInvalid, e, i, "", "%s: %v", e.Path, err), false, true
	}
	keys := c.keys[s.keyID]
	if len(keys) == 0 {
		return c.fault(ImaPolicySignatureUntrustedKey, e, i, "", "%s is not in the runtime policy and is signed by key id %08x, which the policy does not trust", e.Path, s.keyID), false, true
	}
	if h, ok := appraise.IMAHashAlg(e.FileHashAlg); !ok || h != s.hash {
		return c.fault(ImaPolicySignatureInvalid, e, i, "", "%s: the signature is over a %v digest, the file was measured with %s", e.Path, s.hash, e.FileHashAlg), false, true
	}
	key := sigCacheKey(e.FileHash, e.Signature)
	if c.sigs.has(key) {
		return appraise.Fault{}, true, true
	}
	msg := s.signedDigest(e.FileHash)
	for _, k := range keys {
		if k.verify(s, msg) {
			c.sigs.add(key)
			return appraise.Fault{}, true, true
		}
	}
	return c.fault(ImaPolicySignatureInvalid, e, i, "", "%s: the version %d signature does not verify with the trusted key of id %08x", e.Path, s.version, s.keyID), false, true
}

// buffer appraises an ima-buf entry by its name: a keyring's, or another.
func (c *Compiled) buffer(e *appraise.IMAEntry, i int) (appraise.Fault, bool) {
	sp, listed := c.lookup(&c.keyrings, e.Path)
	if !listed {
		sp, listed = c.lookup(&c.bufs, e.Path)
	}
	if listed && c.allowed(sp, e.FileHashAlg, e.FileHash) {
		return appraise.Fault{}, true
	}
	if c.excluded(e.Path) {
		return appraise.Fault{}, true
	}
	expected := ""
	if listed {
		expected = c.digests(sp)
	}
	return c.fault(ImaPolicyBufferNotAllowed, e, i, expected, "the ima-buf entry %q measured a buffer the runtime policy does not allow", e.Path), false
}

// fault describes a disallowed entry: the path, the measured digest and,
// when the path is listed, the digests allowed.
func (c *Compiled) fault(name string, e *appraise.IMAEntry, i int, expected, format string, args ...any) appraise.Fault {
	return appraise.Fault{
		Name:        name,
		Description: fmt.Sprintf("IMA entry %d: ", i) + fmt.Sprintf(format, args...),
		File:        e.Path,
		Expected:    expected,
		Actual:      measuredDigest(e),
	}
}

func measuredDigest(e *appraise.IMAEntry) string {
	if e.Violation() {
		return ""
	}
	return e.FileHashAlg + ":" + hex.EncodeToString(e.FileHash)
}

// checkBootAggregate checks the boot_aggregate entry against the quoted
// PCRs of the bank of its algorithm: the hash over PCRs 0-7 for SHA-1 and
// over PCRs 0-9 for the other banks (ima_calc_boot_aggregate, Linux 5.8
// and later).
func checkBootAggregate(e *appraise.IMAEntry, i int, boot appraise.PCRs) (appraise.Fault, bool) {
	want, err := BootAggregate(e.FileHashAlg, boot)
	f := appraise.Fault{Name: ImaPolicyBootAggregateMismatch, File: bootAggregateName, Actual: measuredDigest(e)}
	if err != nil {
		f.Description = fmt.Sprintf("IMA entry %d: the boot_aggregate cannot be checked: %v", i, err)
		return f, false
	}
	if string(want) == string(e.FileHash) {
		return appraise.Fault{}, true
	}
	f.Expected = e.FileHashAlg + ":" + hex.EncodeToString(want)
	f.Description = fmt.Sprintf("IMA entry %d: the boot_aggregate is not the hash of the quoted %s PCRs", i, e.FileHashAlg)
	return f, false
}

// BootAggregate computes IMA's boot_aggregate in a digest algorithm
// ("sha1", "sha256", ...) from the quoted PCR values of that algorithm's
// bank ("SHA1", "SHA256", ...): the hash over PCRs 0-7 for SHA-1, over
// PCRs 0-9 for the other banks.
func BootAggregate(alg string, pcrs appraise.PCRs) ([]byte, error) {
	h, ok := appraise.IMAHashAlg(alg)
	if !ok {
		return nil, fmt.Errorf("the %q algorithm is not supported", alg)
	}
	bank := strings.ToUpper(alg) // the evidence package's bank names
	last := 9
	if alg == "sha1" {
		last = 7
	}
	d := h.New()
	for i := 0; i <= last; i++ {
		v, ok := pcrs[bank][i]
		if !ok {
			return nil, fmt.Errorf("the quote does not cover %s PCR %d", bank, i)
		}
		if len(v) != h.Size() {
			return nil, fmt.Errorf("%s PCR %d has %d bytes", bank, i, len(v))
		}
		d.Write(v)
	}
	return d.Sum(nil), nil
}
