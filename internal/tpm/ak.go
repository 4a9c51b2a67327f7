package tpm

import (
	"cmp"
	"crypto"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// DefaultAKHandle is the persistent handle the AK is kept at. It lies in the
// owner range, away from the endorsement range 0x8101xxxx where the TCG
// provisioning guidance puts EKs (0x81010001 RSA, 0x81010002 ECC P-256).
const DefaultAKHandle uint32 = 0x81000100

// ErrAKMismatch reports a key at the AK handle that is not an AK of the
// requested kind. LoadOrCreateAK never replaces it: an enrolled AK must not
// change behind the verifier's back.
var ErrAKMismatch = errors.New("key at the ak handle is not the requested attestation key")

// AKOptions chooses the AK. The zero value is an ECC P-256 AK at DefaultAKHandle.
type AKOptions struct {
	// Algorithm is ECCP256 (default) or RSA2048.
	Algorithm KeyAlgorithm
	// Handle is the persistent handle (0x81000000-0x81ffffff); 0 means DefaultAKHandle.
	Handle uint32
}

// AK is the attestation key: a restricted signing key, persistent in the TPM.
type AK struct {
	Algorithm KeyAlgorithm
	// Handle is the AK's persistent handle.
	Handle uint32
	// Public is the TPMT_PUBLIC of the AK in TPM wire encoding.
	Public []byte
	// Name is the TPM name of the AK (nameAlg || digest of Public).
	Name []byte
	// Key is the AK public key (*ecdsa.PublicKey or *rsa.PublicKey).
	Key crypto.PublicKey
}

// akParentTemplate is the storage primary the AK is created under: the TCG
// ECC P-256 SRK template, in the endorsement hierarchy. It is only needed at
// creation; the AK then lives on at its persistent handle.
var akParentTemplate = tpm2.ECCSRKTemplate

// akAttributes: the AK has an empty authorization, so dictionary-attack
// protection guards nothing; NoDA keeps a TPM in DA lockout (after unorderly
// resets, say) from stopping attestation.
var akAttributes = tpm2.TPMAObject{
	NoDA:                true,
	FixedTPM:            true,
	FixedParent:         true,
	SensitiveDataOrigin: true,
	UserWithAuth:        true,
	Restricted:          true,
	SignEncrypt:         true,
}

// AKTemplate is the public area an AK of alg is created from (its unique
// field empty): what a software TPM copies to make the same AK.
func AKTemplate(alg KeyAlgorithm) (tpm2.TPMTPublic, error) {
	tmpl := tpm2.TPMTPublic{NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: akAttributes}
	noSym := tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull}
	switch alg {
	case ECCP256:
		tmpl.Type = tpm2.TPMAlgECC
		tmpl.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: noSym,
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		})
		tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{})
		return tmpl, nil
	case RSA2048:
		tmpl.Type = tpm2.TPMAlgRSA
		tmpl.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: noSym,
			Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgRSASSA, Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256})},
			KeyBits:   2048,
		})
		tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{})
		return tmpl, nil
	default:
		return tpm2.TPMTPublic{}, fmt.Errorf("unsupported ak algorithm %q", alg)
	}
}

// LoadOrCreateAK loads the AK from its persistent handle, or creates it
// there when the handle is empty, and makes it the AK that Quote and
// ActivateCredential use. The same TPM state always yields the same AK.
// Creating needs the owner hierarchy's authorization to be empty
// (EvictControl).
func (t *TPM) LoadOrCreateAK(opts AKOptions) (*AK, error) {
	opts.Algorithm = cmp.Or(opts.Algorithm, ECCP256)
	opts.Handle = cmp.Or(opts.Handle, DefaultAKHandle)
	if opts.Handle>>24 != uint32(tpm2.TPMHTPersistent) {
		return nil, fmt.Errorf("ak handle %#x is not a persistent handle", opts.Handle)
	}
	tmpl, err := AKTemplate(opts.Algorithm)
	if err != nil {
		return nil, err
	}
	ak, err := t.readAK(opts)
	if errors.Is(err, tpm2.TPMRCHandle) {
		ak, err = t.createAK(opts, tmpl)
	}
	if err != nil {
		return nil, err
	}
	t.ak = ak
	return ak, nil
}

// readAK reads and checks the key at the AK handle.
func (t *TPM) readAK(opts AKOptions) (*AK, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(opts.Handle)}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("read ak at %#x: %w", opts.Handle, err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("decode ak public at %#x: %w", opts.Handle, err)
	}
	if err := checkAK(pub, opts.Algorithm); err != nil {
		return nil, fmt.Errorf("%w at %#x: %w", ErrAKMismatch, opts.Handle, err)
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, fmt.Errorf("decode ak public key: %w", err)
	}
	return &AK{
		Algorithm: opts.Algorithm,
		Handle:    opts.Handle,
		Public:    tpm2.Marshal(pub),
		Name:      rsp.Name.Buffer,
		Key:       key,
	}, nil
}

// checkAK tells whether pub is an AK of the given algorithm as this package
// creates them.
func checkAK(pub *tpm2.TPMTPublic, alg KeyAlgorithm) error {
	if pub.ObjectAttributes != akAttributes {
		return fmt.Errorf("object attributes %+v are not those of a restricted signing key", pub.ObjectAttributes)
	}
	switch alg {
	case ECCP256:
		p, err := pub.Parameters.ECCDetail()
		if pub.Type != tpm2.TPMAlgECC || err != nil || p.CurveID != tpm2.TPMECCNistP256 {
			return errors.New("not an ecc p-256 key")
		}
	case RSA2048:
		p, err := pub.Parameters.RSADetail()
		if pub.Type != tpm2.TPMAlgRSA || err != nil || p.KeyBits != 2048 {
			return errors.New("not an rsa-2048 key")
		}
	}
	return nil
}

func (t *TPM) createAK(opts AKOptions, tmpl tpm2.TPMTPublic) (*AK, error) {
	parent, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(akParentTemplate),
	}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("create ak parent: %w", err)
	}
	parentHandle := tpm2.AuthHandle{Handle: parent.ObjectHandle, Name: parent.Name, Auth: tpm2.PasswordAuth(nil)}
	created, err := tpm2.Create{
		ParentHandle: parentHandle,
		InPublic:     tpm2.New2B(tmpl),
	}.Execute(t.t)
	if err != nil {
		_ = t.flush(parent.ObjectHandle)
		return nil, fmt.Errorf("create ak: %w", err)
	}
	loaded, err := tpm2.Load{
		ParentHandle: parentHandle,
		InPrivate:    created.OutPrivate,
		InPublic:     created.OutPublic,
	}.Execute(t.t)
	if err != nil {
		_ = t.flush(parent.ObjectHandle)
		return nil, fmt.Errorf("load ak: %w", err)
	}
	_, err = tpm2.EvictControl{
		Auth:             tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		ObjectHandle:     tpm2.NamedHandle{Handle: loaded.ObjectHandle, Name: loaded.Name},
		PersistentHandle: tpm2.TPMHandle(opts.Handle),
	}.Execute(t.t)
	// Free the transient slots before reading the persistent AK back: TPMs
	// without a resource manager (swtpm, the simulator) have only three.
	flushErr := errors.Join(t.flush(loaded.ObjectHandle), t.flush(parent.ObjectHandle))
	if err != nil {
		return nil, fmt.Errorf("persist ak at %#x: %w", opts.Handle, err)
	}
	if flushErr != nil {
		return nil, fmt.Errorf("flush ak creation objects: %w", flushErr)
	}
	return t.readAK(opts)
}
