package imapolicy

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
)

// An ima-modsig entry carries the file's appended signature (the kernel's
// module signature format, which scripts/sign-file writes): a detached
// PKCS#7/CMS SignedData over the file without its signature, whose digest
// the entry records as d-modsig. The kernel parses it in
// crypto/asymmetric_keys/pkcs7_parser.c and takes d-modsig from
// pkcs7_get_digest: the digest of the content or, when the signer has
// authenticated attributes, of those attributes (after checking their
// messageDigest against the content). Either way the signature is over
// d-modsig, which is what the verifier checks.
//
// parseModsig accepts the subset of SignedData the kernel accepts for a
// module signature, strictly (DER only): one SignerInfo, identified by
// issuer and serial number (SignedData and SignerInfo version 1) or by
// subject key identifier (version 3); digest SHA-1, SHA-256, SHA-384 or
// SHA-512; signature rsaEncryption (PKCS#1 v1.5), ecdsa-with-SHA* or
// RSASSA-PSS (proposed for the kernel in 2026 with ML-DSA module
// signing); with or without authenticated attributes (kernels up to then
// refuse them in a module signature but still record d-modsig; that work
// lifts the refusal); the content absent (detached).
// Certificates carried in the message are skipped: the signer must be one
// of the policy's verification keys.

// Bounds of an appended signature.
const (
	// maxModsigBytes bounds the message (a module signature without
	// certificates is under 1 KiB; with a chain, a few KiB).
	maxModsigBytes = 64 << 10
	// maxModsigSignatureBytes bounds the signature (RSA-16384).
	maxModsigSignatureBytes = 2048
	// maxAuthAttrs bounds the authenticated attributes.
	maxAuthAttrs = 16
)

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidRSASSAPSS     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
)

// modsigDigests are the digest algorithms of a SignerInfo the verifier
// accepts: the ones an IMA log's d-modsig field may use.
var modsigDigests = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, crypto.SHA1},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, crypto.SHA256},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, crypto.SHA384},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, crypto.SHA512},
}

// ecdsaSigAlgs are the ecdsa-with-* signature algorithms the kernel
// accepts (SHA-1 and SHA-2; the key decides the curve).
var ecdsaSigAlgs = []asn1.ObjectIdentifier{
	{1, 2, 840, 10045, 4, 1},
	{1, 2, 840, 10045, 4, 3, 1},
	{1, 2, 840, 10045, 4, 3, 2},
	{1, 2, 840, 10045, 4, 3, 3},
	{1, 2, 840, 10045, 4, 3, 4},
}

// modsigScheme is a SignerInfo's signature scheme.
type modsigScheme int

const (
	schemePKCS1v15 modsigScheme = iota + 1
	schemePSS
	schemeECDSA
)

// modsig is a decoded appended signature.
type modsig struct {
	hash   crypto.Hash
	scheme modsigScheme
	// pssSalt is the RSASSA-PSS salt length.
	pssSalt int
	// The signer: issuer (a DER Name) and serial, or a subject key id.
	issuer []byte
	serial *big.Int
	skid   []byte
	// authAttrs are the DER of the authenticated attributes with the SET
	// tag (what their digest is over); nil without them.
	authAttrs []byte
	sig       []byte
}

// parseModsig decodes an ima-modsig signature field.
func parseModsig(b []byte) (modsig, error) {
	if len(b) > maxModsigBytes {
		return modsig{}, fmt.Errorf("modsig of %d bytes, more than %d", len(b), maxModsigBytes)
	}
	top := derReader{rest: b}
	ci, err := top.last(asn1.ClassUniversal, asn1.TagSequence, "content info", "modsig")
	if err != nil {
		return modsig{}, err
	}
	r := derReader{rest: ci.Bytes}
	if err := r.oidEquals(oidSignedData, "content type (signedData)"); err != nil {
		return modsig{}, err
	}
	wrap, err := r.last(asn1.ClassContextSpecific, 0, "signed data [0]", "content info")
	if err != nil {
		return modsig{}, err
	}
	w := derReader{rest: wrap.Bytes}
	sd, err := w.last(asn1.ClassUniversal, asn1.TagSequence, "signed data", "signed data [0]")
	if err != nil {
		return modsig{}, err
	}
	return parseSignedData(sd.Bytes)
}

func parseSignedData(b []byte) (modsig, error) {
	r := derReader{rest: b}
	version, err := r.smallInt("signed data version")
	if err != nil {
		return modsig{}, err
	}
	if version != 1 && version != 3 {
		return modsig{}, fmt.Errorf("signed data version %d is not supported (1 or 3)", version)
	}
	// The digest algorithms are the signers' own; the kernel skips them.
	if _, err := r.next(asn1.ClassUniversal, asn1.TagSet, true, "digest algorithms"); err != nil {
		return modsig{}, err
	}
	encap, err := r.next(asn1.ClassUniversal, asn1.TagSequence, true, "encapsulated content info")
	if err != nil {
		return modsig{}, err
	}
	e := derReader{rest: encap.Bytes}
	if err := e.oidEquals(oidData, "content type (data)"); err != nil {
		return modsig{}, err
	}
	if len(e.rest) > 0 {
		return modsig{}, errors.New("the message carries its content: an appended signature is detached")
	}
	// Certificates and CRLs are skipped: the signer must be a policy key.
	for tag := range 2 {
		if _, _, err := r.optional(asn1.ClassContextSpecific, tag, true, "certificates or crls"); err != nil {
			return modsig{}, err
		}
	}
	infos, err := r.last(asn1.ClassUniversal, asn1.TagSet, "signer infos", "signed data")
	if err != nil {
		return modsig{}, err
	}
	s := derReader{rest: infos.Bytes}
	info, err := s.next(asn1.ClassUniversal, asn1.TagSequence, true, "signer info")
	if err != nil {
		return modsig{}, err
	}
	if len(s.rest) > 0 {
		return modsig{}, errors.New("more than one signer (the kernel takes d-modsig from the only one)")
	}
	return parseSignerInfo(info.Bytes, version)
}

func parseSignerInfo(b []byte, sdVersion int) (modsig, error) {
	var m modsig
	r := derReader{rest: b}
	version, err := r.smallInt("signer info version")
	if err != nil {
		return modsig{}, err
	}
	switch {
	case version == 1 && sdVersion == 1:
		sid, err := r.next(asn1.ClassUniversal, asn1.TagSequence, true, "issuer and serial number")
		if err != nil {
			return modsig{}, err
		}
		if m.issuer, m.serial, err = parseIssuerAndSerial(sid.Bytes); err != nil {
			return modsig{}, err
		}
	case version == 3 && sdVersion == 3:
		sid, err := r.next(asn1.ClassContextSpecific, 0, false, "subject key identifier")
		if err != nil {
			return modsig{}, err
		}
		if len(sid.Bytes) == 0 || len(sid.Bytes) > 64 {
			return modsig{}, fmt.Errorf("subject key identifier of %d bytes", len(sid.Bytes))
		}
		m.skid = sid.Bytes
	default:
		return modsig{}, fmt.Errorf("signer info version %d in signed data version %d is not supported (1 in 1, 3 in 3)", version, sdVersion)
	}
	if m.hash, err = parseDigestAlgorithm(&r); err != nil {
		return modsig{}, err
	}
	attrs, ok, err := r.optional(asn1.ClassContextSpecific, 0, true, "authenticated attributes")
	if err != nil {
		return modsig{}, err
	}
	if ok {
		if err := checkAuthAttrs(attrs.Bytes, m.hash); err != nil {
			return modsig{}, err
		}
		// Their digest is over their DER with the SET tag, not [0].
		m.authAttrs = bytes.Clone(attrs.FullBytes)
		m.authAttrs[0] = asn1.TagSet | 0x20
	}
	if m.scheme, m.pssSalt, err = parseSignatureAlgorithm(&r, m.hash); err != nil {
		return modsig{}, err
	}
	sig, err := r.next(asn1.ClassUniversal, asn1.TagOctetString, false, "signature")
	if err != nil {
		return modsig{}, err
	}
	if len(sig.Bytes) == 0 || len(sig.Bytes) > maxModsigSignatureBytes {
		return modsig{}, fmt.Errorf("signature of %d bytes", len(sig.Bytes))
	}
	m.sig = sig.Bytes
	if _, _, err := r.optional(asn1.ClassContextSpecific, 1, true, "unauthenticated attributes"); err != nil {
		return modsig{}, err
	}
	if err := r.end("signer info"); err != nil {
		return modsig{}, err
	}
	return m, nil
}

func parseIssuerAndSerial(b []byte) ([]byte, *big.Int, error) {
	r := derReader{rest: b}
	issuer, err := r.next(asn1.ClassUniversal, asn1.TagSequence, true, "issuer")
	if err != nil {
		return nil, nil, err
	}
	serial, err := r.next(asn1.ClassUniversal, asn1.TagInteger, false, "serial number")
	if err != nil {
		return nil, nil, err
	}
	if err := r.end("issuer and serial number"); err != nil {
		return nil, nil, err
	}
	n := new(big.Int)
	if _, err := asn1.Unmarshal(serial.FullBytes, &n); err != nil {
		return nil, nil, fmt.Errorf("serial number: %w", err)
	}
	return issuer.FullBytes, n, nil
}

// parseDigestAlgorithm reads an AlgorithmIdentifier of a digest (its
// parameters absent or NULL).
func parseDigestAlgorithm(r *derReader) (crypto.Hash, error) {
	oid, params, err := r.algorithm("digest algorithm")
	if err != nil {
		return 0, err
	}
	if !nullOrAbsent(params) {
		return 0, errors.New("digest algorithm parameters are neither absent nor NULL")
	}
	for _, d := range modsigDigests {
		if oid.Equal(d.oid) {
			return d.hash, nil
		}
	}
	return 0, fmt.Errorf("digest algorithm %v is not supported (SHA-1, SHA-256, SHA-384, SHA-512)", oid)
}

// parseSignatureAlgorithm reads a SignerInfo's signature algorithm.
func parseSignatureAlgorithm(r *derReader, h crypto.Hash) (modsigScheme, int, error) {
	oid, params, err := r.algorithm("signature algorithm")
	if err != nil {
		return 0, 0, err
	}
	switch {
	case oid.Equal(oidRSAEncryption):
		if !nullOrAbsent(params) {
			return 0, 0, errors.New("rsaEncryption parameters are not NULL")
		}
		return schemePKCS1v15, 0, nil
	case oid.Equal(oidRSASSAPSS):
		salt, err := parsePSSParams(params, h)
		return schemePSS, salt, err
	}
	for _, e := range ecdsaSigAlgs {
		if oid.Equal(e) {
			if len(params) != 0 {
				return 0, 0, errors.New("ecdsa signature algorithm with parameters")
			}
			return schemeECDSA, 0, nil
		}
	}
	return 0, 0, fmt.Errorf("signature algorithm %v is not supported (rsaEncryption, RSASSA-PSS, ecdsa-with-SHA*)", oid)
}

// parsePSSParams reads RSASSA-PSS-params (RFC 4055): the hash and MGF1's
// hash must be the SignerInfo's digest, the trailer field 1.
func parsePSSParams(b []byte, h crypto.Hash) (int, error) {
	if len(b) == 0 {
		return 0, errors.New("RSASSA-PSS without parameters")
	}
	outer := derReader{rest: b}
	seq, err := outer.last(asn1.ClassUniversal, asn1.TagSequence, "RSASSA-PSS parameters", "RSASSA-PSS parameters")
	if err != nil {
		return 0, err
	}
	r := derReader{rest: seq.Bytes}
	hash, salt, trailer := crypto.SHA1, 20, 1
	mgfHash := crypto.SHA1
	if f, ok, err := r.optional(asn1.ClassContextSpecific, 0, true, "PSS hash"); err != nil {
		return 0, err
	} else if ok {
		in := derReader{rest: f.Bytes}
		if hash, err = parseDigestAlgorithm(&in); err != nil {
			return 0, err
		}
		if err := in.end("PSS hash"); err != nil {
			return 0, err
		}
	}
	if f, ok, err := r.optional(asn1.ClassContextSpecific, 1, true, "PSS mask generation"); err != nil {
		return 0, err
	} else if ok {
		in := derReader{rest: f.Bytes}
		oid, params, err := in.algorithm("mask generation function")
		if err != nil {
			return 0, err
		}
		if !oid.Equal(oidMGF1) {
			return 0, fmt.Errorf("mask generation function %v is not MGF1", oid)
		}
		p := derReader{rest: params}
		if mgfHash, err = parseDigestAlgorithm(&p); err != nil {
			return 0, fmt.Errorf("MGF1: %w", err)
		}
		if err := p.end("MGF1 parameters"); err != nil {
			return 0, err
		}
		if err := in.end("PSS mask generation"); err != nil {
			return 0, err
		}
	}
	for i, v := range []*int{&salt, &trailer} {
		f, ok, err := r.optional(asn1.ClassContextSpecific, 2+i, true, "PSS salt length or trailer")
		if err != nil {
			return 0, err
		}
		if ok {
			in := derReader{rest: f.Bytes}
			if *v, err = in.smallInt("PSS salt length or trailer"); err != nil {
				return 0, err
			}
			if err := in.end("PSS salt length or trailer"); err != nil {
				return 0, err
			}
		}
	}
	if err := r.end("RSASSA-PSS parameters"); err != nil {
		return 0, err
	}
	switch {
	case hash != h || mgfHash != h:
		return 0, fmt.Errorf("RSASSA-PSS over %v with MGF1-%v, the signer's digest is %v", hash, mgfHash, h)
	case trailer != 1:
		return 0, fmt.Errorf("RSASSA-PSS trailer field %d", trailer)
	case salt < 0 || salt > maxModsigSignatureBytes:
		return 0, fmt.Errorf("RSASSA-PSS salt length %d", salt)
	}
	return salt, nil
}

// checkAuthAttrs checks the authenticated attributes the way the kernel
// does: at most one of each, a contentType of data and a messageDigest of
// the digest's size both present.
func checkAuthAttrs(b []byte, h crypto.Hash) error {
	r := derReader{rest: b}
	var contentType, messageDigest bool
	for n := 0; len(r.rest) > 0; n++ {
		if n == maxAuthAttrs {
			return fmt.Errorf("more than %d authenticated attributes", maxAuthAttrs)
		}
		attr, err := r.next(asn1.ClassUniversal, asn1.TagSequence, true, "authenticated attribute")
		if err != nil {
			return err
		}
		a := derReader{rest: attr.Bytes}
		var oid asn1.ObjectIdentifier
		if err := a.oid(&oid, "attribute type"); err != nil {
			return err
		}
		set, err := a.last(asn1.ClassUniversal, asn1.TagSet, "attribute values", "authenticated attribute")
		if err != nil {
			return err
		}
		v := derReader{rest: set.Bytes}
		switch {
		case oid.Equal(oidContentType):
			if contentType {
				return errors.New("repeated contentType attribute")
			}
			contentType = true
			if err := v.oidEquals(oidData, "contentType attribute (data)"); err != nil {
				return err
			}
		case oid.Equal(oidMessageDigest):
			if messageDigest {
				return errors.New("repeated messageDigest attribute")
			}
			messageDigest = true
			d, err := v.next(asn1.ClassUniversal, asn1.TagOctetString, false, "messageDigest attribute")
			if err != nil {
				return err
			}
			if len(d.Bytes) != h.Size() {
				return fmt.Errorf("messageDigest of %d bytes, a %v digest has %d", len(d.Bytes), h, h.Size())
			}
		default:
			continue // signingTime, smimeCapabilities, ...: not checked
		}
		if err := v.end("attribute values"); err != nil {
			return err
		}
	}
	if !contentType || !messageDigest {
		return errors.New("authenticated attributes without contentType or messageDigest")
	}
	return nil
}

func nullOrAbsent(params []byte) bool {
	return len(params) == 0 || bytes.Equal(params, asn1.NullBytes)
}

// derReader reads the elements of a DER value's contents in order.
type derReader struct {
	rest []byte
}

// next reads the next element, which must have the class, tag and form.
func (r *derReader) next(class, tag int, compound bool, what string) (asn1.RawValue, error) {
	v, ok, err := r.optional(class, tag, compound, what)
	if err != nil {
		return asn1.RawValue{}, err
	}
	if !ok {
		return asn1.RawValue{}, fmt.Errorf("%s: missing", what)
	}
	return v, nil
}

// optional reads the next element if it has the class and tag.
func (r *derReader) optional(class, tag int, compound bool, what string) (asn1.RawValue, bool, error) {
	if len(r.rest) == 0 {
		return asn1.RawValue{}, false, nil
	}
	var v asn1.RawValue
	rest, err := asn1.Unmarshal(r.rest, &v)
	if err != nil {
		return asn1.RawValue{}, false, fmt.Errorf("%s: %w", what, err)
	}
	if v.Class != class || v.Tag != tag {
		return asn1.RawValue{}, false, nil
	}
	if v.IsCompound != compound {
		return asn1.RawValue{}, false, fmt.Errorf("%s: wrong form", what)
	}
	r.rest = rest
	return v, true, nil
}

// last reads the compound element what, the last one of its container.
func (r *derReader) last(class, tag int, what, container string) (asn1.RawValue, error) {
	v, err := r.next(class, tag, true, what)
	if err != nil {
		return asn1.RawValue{}, err
	}
	return v, r.end(container)
}

func (r *derReader) end(what string) error {
	if len(r.rest) > 0 {
		return fmt.Errorf("%s: %d bytes after its end", what, len(r.rest))
	}
	return nil
}

func (r *derReader) oid(oid *asn1.ObjectIdentifier, what string) error {
	v, err := r.next(asn1.ClassUniversal, asn1.TagOID, false, what)
	if err != nil {
		return err
	}
	if _, err := asn1.Unmarshal(v.FullBytes, oid); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (r *derReader) oidEquals(want asn1.ObjectIdentifier, what string) error {
	var oid asn1.ObjectIdentifier
	if err := r.oid(&oid, what); err != nil {
		return err
	}
	if !oid.Equal(want) {
		return fmt.Errorf("%s: %v is not %v", what, oid, want)
	}
	return nil
}

// smallInt reads an INTEGER of at most 16 bits.
func (r *derReader) smallInt(what string) (int, error) {
	v, err := r.next(asn1.ClassUniversal, asn1.TagInteger, false, what)
	if err != nil {
		return 0, err
	}
	var n int
	if _, err := asn1.Unmarshal(v.FullBytes, &n); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if n < -1<<15 || n > 1<<15 {
		return 0, fmt.Errorf("%s: %d is out of range", what, n)
	}
	return n, nil
}

// algorithm reads an AlgorithmIdentifier: the OID and the DER of its
// parameters (nil when absent).
func (r *derReader) algorithm(what string) (asn1.ObjectIdentifier, []byte, error) {
	v, err := r.next(asn1.ClassUniversal, asn1.TagSequence, true, what)
	if err != nil {
		return nil, nil, err
	}
	a := derReader{rest: v.Bytes}
	var oid asn1.ObjectIdentifier
	if err := a.oid(&oid, what); err != nil {
		return nil, nil, err
	}
	params := a.rest
	if len(params) > 0 {
		// One element, whatever it is.
		var raw asn1.RawValue
		rest, err := asn1.Unmarshal(params, &raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s parameters: %w", what, err)
		}
		if len(rest) > 0 {
			return nil, nil, fmt.Errorf("%s: %d bytes after its parameters", what, len(rest))
		}
	}
	return oid, params, nil
}

// signerName describes an appended signature's signer for a fault.
func (m *modsig) signerName() string {
	if m.skid != nil {
		return "subject key identifier " + hex.EncodeToString(m.skid)
	}
	var rdn pkix.RDNSequence
	issuer := hex.EncodeToString(m.issuer)
	if rest, err := asn1.Unmarshal(m.issuer, &rdn); err == nil && len(rest) == 0 {
		var n pkix.Name
		n.FillFromRDNSequence(&rdn)
		issuer = n.String()
	}
	return fmt.Sprintf("issuer %q serial %s", issuer, m.serial.Text(16))
}

// signs reports whether k is the key the appended signature names.
func (m *modsig) signs(k *verificationKey) bool {
	if m.skid != nil {
		return bytes.Equal(k.cert.SubjectKeyId, m.skid)
	}
	return bytes.Equal(k.cert.RawIssuer, m.issuer) && k.cert.SerialNumber != nil && k.cert.SerialNumber.Cmp(m.serial) == 0
}

// verifyModsig checks an appended signature over d-modsig with k.
func (k *verificationKey) verifyModsig(m *modsig, digest []byte) bool {
	switch pub := k.cert.PublicKey.(type) {
	case *rsa.PublicKey:
		switch m.scheme {
		case schemePKCS1v15:
			return rsa.VerifyPKCS1v15(pub, m.hash, digest, m.sig) == nil
		case schemePSS:
			return rsa.VerifyPSS(pub, m.hash, digest, m.sig, &rsa.PSSOptions{SaltLength: m.pssSalt, Hash: m.hash}) == nil
		}
	case *ecdsa.PublicKey:
		return m.scheme == schemeECDSA && ecdsa.VerifyASN1(pub, digest, m.sig)
	}
	return false
}
