package imapolicy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // key ids are SHA-1 of the public key by definition (RFC 5280 4.2.1.2)
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// IMA signature header (struct signature_v2_hdr of the kernel).
const (
	// xattrDigsig is EVM_IMA_XATTR_DIGSIG, the type of a file signature.
	xattrDigsig = 0x03
	// sigVersion2 signs the file digest itself.
	sigVersion2 = 2
	// sigVersion3 signs the digest of struct ima_file_id: the signature
	// type, the file digest's hash algorithm and the file digest.
	sigVersion3 = 3
	// sigHeaderSize: type, version, hash algorithm, key id (4), size (2).
	sigHeaderSize = 9
)

// hashAlgos maps the kernel's enum hash_algo to Go's hashes (the ones the
// log's file digests may use).
var hashAlgos = map[byte]crypto.Hash{2: crypto.SHA1, 4: crypto.SHA256, 5: crypto.SHA384, 6: crypto.SHA512}

// imaSignature is a decoded IMA signature, version 2 or 3.
type imaSignature struct {
	version byte
	// algo is the hash algorithm's number (enum hash_algo), hash its hash.
	algo  byte
	hash  crypto.Hash
	keyID uint32
	sig   []byte
}

// errNotSignature: the field holds no file signature (the security.ima
// xattr may hold a bare digest).
var errNotSignature = errors.New("not a file signature")

// parseSignature decodes an ima-sig signature field.
func parseSignature(b []byte) (imaSignature, error) {
	if len(b) == 0 || b[0] != xattrDigsig {
		return imaSignature{}, errNotSignature
	}
	if len(b) < sigHeaderSize {
		return imaSignature{}, fmt.Errorf("signature of %d bytes is shorter than its header", len(b))
	}
	if b[1] != sigVersion2 && b[1] != sigVersion3 {
		return imaSignature{}, fmt.Errorf("signature version %d is not supported (2 or 3)", b[1])
	}
	h, ok := hashAlgos[b[2]]
	if !ok {
		return imaSignature{}, fmt.Errorf("signature hash algorithm %d is not supported", b[2])
	}
	size := int(binary.BigEndian.Uint16(b[7:9]))
	if size != len(b)-sigHeaderSize {
		return imaSignature{}, fmt.Errorf("signature header says %d bytes, the field holds %d", size, len(b)-sigHeaderSize)
	}
	return imaSignature{version: b[1], algo: b[2], hash: h, keyID: binary.BigEndian.Uint32(b[3:7]), sig: b[sigHeaderSize:]}, nil
}

// signedDigest returns what a signature signs for a file digest (of the
// signature's hash algorithm): the digest itself for version 2; for
// version 3 the digest of struct ima_file_id {hash_type, hash_algorithm,
// hash}, cut after the digest (the kernel's calc_file_id_hash).
func (s imaSignature) signedDigest(fileDigest []byte) []byte {
	if s.version != sigVersion3 {
		return fileDigest
	}
	d := s.hash.New()
	d.Write([]byte{xattrDigsig, s.algo})
	d.Write(fileDigest)
	return d.Sum(nil)
}

// verificationKey is a trusted certificate's public key.
type verificationKey struct {
	cert *x509.Certificate
	// ids are the key ids a signature may name: the last 4 bytes of the
	// subject key identifier and of the SHA-1 of the public key.
	ids []uint32
}

func newVerificationKey(der []byte) (*verificationKey, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	switch cert.PublicKey.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return nil, fmt.Errorf("the certificate's %s key is not supported (RSA or ECDSA)", cert.PublicKeyAlgorithm)
	}
	k := &verificationKey{cert: cert}
	if len(cert.SubjectKeyId) >= 4 {
		k.ids = append(k.ids, binary.BigEndian.Uint32(cert.SubjectKeyId[len(cert.SubjectKeyId)-4:]))
	}
	if id, ok := KeyID(cert); ok && (len(k.ids) == 0 || k.ids[0] != id) {
		k.ids = append(k.ids, id)
	}
	return k, nil
}

// KeyID returns the IMA key id evmctl computes for a certificate's key:
// the last 4 bytes of the SHA-1 of its subjectPublicKey bit string.
func KeyID(cert *x509.Certificate) (uint32, bool) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return 0, false
	}
	sum := sha1.Sum(spki.PublicKey.Bytes) //nolint:gosec // see import
	return binary.BigEndian.Uint32(sum[16:]), true
}

// verify checks a signature over what it signs (see signedDigest).
func (k *verificationKey) verify(s imaSignature, signed []byte) bool {
	switch pub := k.cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, s.hash, signed, s.sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, signed, s.sig)
	}
	return false
}

// sigCacheSize bounds the verified signatures a Compiled remembers.
const sigCacheSize = 1 << 16

// sigCache remembers signatures that verified, keyed by the SHA-256 of the
// digest and the signature field (which names the key), so that a signed
// file seen on many hosts costs one verification. Failures are not kept.
type sigCache struct {
	mu   sync.RWMutex
	seen map[[sha256.Size]byte]struct{}
}

func sigCacheKey(digest, sig []byte) [sha256.Size]byte {
	h := sha256.New()
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(digest)))
	h.Write(n[:])
	h.Write(digest)
	h.Write(sig)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

func (c *sigCache) has(k [sha256.Size]byte) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.seen[k]
	return ok
}

func (c *sigCache) add(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[[sha256.Size]byte]struct{}{}
	}
	if len(c.seen) >= sigCacheSize {
		// Full: forget an arbitrary half-dozen entries to make room.
		n := 0
		for old := range c.seen {
			delete(c.seen, old)
			if n++; n >= 8 {
				break
			}
		}
	}
	c.seen[k] = struct{}{}
}
