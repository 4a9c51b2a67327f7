package tpm

import (
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// KeyAlgorithm names a key type and size.
type KeyAlgorithm string

// Key algorithms. The EK can be any of them; the AK is RSA2048 or ECCP256.
const (
	RSA2048 KeyAlgorithm = "rsa2048"
	ECCP256 KeyAlgorithm = "ecc-p256"
	ECCP384 KeyAlgorithm = "ecc-p384"
)

// NV indices of the EK certificates (TCG EK Credential Profile 2.x).
const (
	NVIndexRSA2048EKCert uint32 = 0x01c00002 // template L-1
	NVIndexECCP256EKCert uint32 = 0x01c0000a // template L-2
	NVIndexECCP384EKCert uint32 = 0x01c00016 // template H-3 (swtpm 0.7 writes its ECC EK cert here)
)

// EK is the endorsement key as created from the TCG default template, with
// its certificate when the TPM holds one.
type EK struct {
	Algorithm KeyAlgorithm
	// Public is the TPMT_PUBLIC of the EK in TPM wire encoding.
	Public []byte
	// Name is the TPM name of the EK (nameAlg || digest of Public).
	Name []byte
	// Key is the EK public key (*rsa.PublicKey or *ecdsa.PublicKey).
	Key crypto.PublicKey
	// Handle is the EK's transient handle, valid until Close or the next EK call.
	Handle uint32
	// Certificate is the DER EK certificate read from NV; nil when absent.
	Certificate []byte

	// userWithAuth tells ActivateCredential whether an empty password
	// satisfies the EK's USER role (H templates) or PolicySecret is needed.
	userWithAuth bool
	nameAlg      tpm2.TPMAlgID
}

// eccP384EKTemplate is the TCG EK Credential Profile template H-3 (ECC NIST
// P-384, SHA-384, policy B, empty unique), the one swtpm uses for its ECC EK.
var eccP384EKTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA384,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		AdminWithPolicy:     true,
		Restricted:          true,
		Decrypt:             true,
	},
	AuthPolicy: tpm2.TPM2BDigest{Buffer: []byte{
		// PolicyB_SHA384: PolicyOR(PolicyA, PolicyC) of the EK profile.
		0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53, 0xd8, 0x82, 0xbc,
		0xf5, 0xfd, 0x3a, 0x1a, 0x07, 0x41, 0x48, 0xbb, 0x35, 0xd3, 0xb4, 0xe4,
		0xcb, 0x1c, 0x0a, 0xd9, 0xbd, 0xe4, 0x19, 0xca, 0xcb, 0x47, 0xba, 0x09,
		0x69, 0x96, 0x46, 0x15, 0x0f, 0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12,
	}},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{
			Algorithm: tpm2.TPMAlgAES,
			KeyBits:   tpm2.NewTPMUSymKeyBits(tpm2.TPMAlgAES, tpm2.TPMKeyBits(256)),
			Mode:      tpm2.NewTPMUSymMode(tpm2.TPMAlgAES, tpm2.TPMAlgCFB),
		},
		Scheme:  tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
		CurveID: tpm2.TPMECCNistP384,
		KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
}

func ekTemplate(alg KeyAlgorithm) (tpm2.TPMTPublic, uint32, error) {
	switch alg {
	case RSA2048:
		return tpm2.RSAEKTemplate, NVIndexRSA2048EKCert, nil
	case ECCP256:
		return tpm2.ECCEKTemplate, NVIndexECCP256EKCert, nil
	case ECCP384:
		return eccP384EKTemplate, NVIndexECCP384EKCert, nil
	default:
		return tpm2.TPMTPublic{}, 0, fmt.Errorf("unsupported ek algorithm %q", alg)
	}
}

// EK creates the endorsement key of the given algorithm from its TCG
// default template (CreatePrimary under the endorsement hierarchy), reads
// its certificate from NV when present, and makes it the EK that
// ActivateCredential uses. A previously loaded EK is flushed.
func (t *TPM) EK(alg KeyAlgorithm) (*EK, error) {
	tmpl, index, err := ekTemplate(alg)
	if err != nil {
		return nil, err
	}
	cert, err := t.readNV(index)
	if err != nil {
		return nil, fmt.Errorf("read %s ek certificate: %w", alg, err)
	}
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(tmpl),
	}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("create %s ek: %w", alg, err)
	}
	ek, err := newEK(alg, rsp, cert)
	if err != nil {
		_ = t.flush(rsp.ObjectHandle)
		return nil, err
	}
	if t.ek != nil {
		if err := t.flush(tpm2.TPMHandle(t.ek.Handle)); err != nil {
			_ = t.flush(rsp.ObjectHandle)
			return nil, fmt.Errorf("flush previous ek: %w", err)
		}
	}
	t.ek = ek
	return ek, nil
}

func newEK(alg KeyAlgorithm, rsp *tpm2.CreatePrimaryResponse, cert []byte) (*EK, error) {
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("decode ek public: %w", err)
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, fmt.Errorf("decode ek public key: %w", err)
	}
	return &EK{
		Algorithm:    alg,
		Public:       tpm2.Marshal(pub),
		Name:         rsp.Name.Buffer,
		Key:          key,
		Handle:       uint32(rsp.ObjectHandle),
		Certificate:  cert,
		userWithAuth: pub.ObjectAttributes.UserWithAuth,
		nameAlg:      pub.NameAlg,
	}, nil
}

// PreferredEK loads the first EK, in the order RSA2048, ECCP256, ECCP384,
// whose certificate the TPM holds; with no certificate at all it loads the
// RSA2048 EK.
func (t *TPM) PreferredEK() (*EK, error) {
	for _, alg := range []KeyAlgorithm{RSA2048, ECCP256, ECCP384} {
		_, index, _ := ekTemplate(alg)
		cert, err := t.readNV(index)
		if err != nil {
			return nil, fmt.Errorf("read %s ek certificate: %w", alg, err)
		}
		if cert != nil {
			return t.EK(alg)
		}
	}
	return t.EK(RSA2048)
}

// readNV reads a whole NV index in chunks of the TPM's NV buffer size. An
// index that is not defined yields nil and no error. EK certificate areas
// are often larger than the DER they hold; the result is cut to the DER.
func (t *TPM) readNV(index uint32) ([]byte, error) {
	pubRsp, err := tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(index)}.Execute(t.t)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read public of nv index %#x: %w", index, err)
	}
	nvPub, err := pubRsp.NVPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("decode public of nv index %#x: %w", index, err)
	}
	chunk, err := t.property(tpm2.TPMPTNVBufferMax)
	if err != nil || chunk == 0 {
		chunk = 512 // the smallest NV buffer the PC Client profile allows
	}
	auth := tpm2.AuthHandle{Handle: tpm2.TPMHandle(index), Name: pubRsp.NVName, Auth: tpm2.PasswordAuth(nil)}
	if !nvPub.Attributes.AuthRead && nvPub.Attributes.OwnerRead {
		auth = tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	}
	size := int(nvPub.DataSize)
	data := make([]byte, 0, size)
	for len(data) < size {
		n := min(size-len(data), int(chunk))
		rsp, err := tpm2.NVRead{
			AuthHandle: auth,
			NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: pubRsp.NVName},
			Size:       uint16(n),
			Offset:     uint16(len(data)),
		}.Execute(t.t)
		if err != nil {
			return nil, fmt.Errorf("read nv index %#x at offset %d: %w", index, len(data), err)
		}
		if len(rsp.Data.Buffer) == 0 {
			return nil, fmt.Errorf("read nv index %#x at offset %d: tpm returned no data", index, len(data))
		}
		data = append(data, rsp.Data.Buffer...)
	}
	return trimDER(data), nil
}

// trimDER cuts data to the first DER element it starts with, dropping the
// padding TPM NV areas carry after a certificate. Data that does not start
// with a DER element is returned unchanged, for the parser to reject.
func trimDER(data []byte) []byte {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(data, &raw)
	if err != nil {
		return data
	}
	return data[:len(data)-len(rest)]
}
