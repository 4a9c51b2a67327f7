package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Secrets are sealed at rest with AES-256-GCM under a key-encryption key
// (KEK). A sealed value is
//
//	magic "\x00tck" | version 1 | key id (8 bytes) | nonce (12 bytes) | ciphertext and tag
//
// The key id is the first 8 bytes of SHA-256("tc kek id\x00" || KEK): it
// names the KEK that sealed the value, so that a wrong KEK is reported as
// such and a value sealed under a previous KEK is found and re-sealed. The
// associated data is the header followed by the secret's name, so a sealed
// value moved to another name does not open.
//
// No plaintext secret starts with the magic: PEM starts with '-', DER with
// 0x30, NATS seeds with 'S'.

// KEKSize is the size of a key-encryption key: 32 bytes (AES-256).
const KEKSize = 32

const (
	sealMagic   = "\x00tck"
	sealVersion = 1
	kekIDSize   = 8
	nonceSize   = 12
	headerSize  = len(sealMagic) + 1 + kekIDSize
)

// ErrWrongKEK reports a secret sealed under a key-encryption key that the
// store was not given, or one that does not open with it. It is wrapped with
// the secret's name and the key id.
var ErrWrongKEK = errors.New("wrong key-encryption key")

// KEK is one key-encryption key.
type KEK struct {
	id   [kekIDSize]byte
	aead cipher.AEAD
}

// NewKEK makes a KEK from 32 bytes of key.
func NewKEK(key []byte) (*KEK, error) {
	if len(key) != KEKSize {
		return nil, fmt.Errorf("key-encryption key: %d bytes, want %d", len(key), KEKSize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	k := &KEK{aead: aead}
	sum := sha256.Sum256(append([]byte("tc kek id\x00"), key...))
	copy(k.id[:], sum[:])
	return k, nil
}

// ID names the KEK (16 hex digits) in logs and errors; it reveals nothing
// about the key.
func (k *KEK) ID() string { return hex.EncodeToString(k.id[:]) }

// ParseKEK reads a KEK as stored in a file or an environment variable:
// exactly 32 raw bytes, or their standard or URL-safe base64 (padding
// optional). Surrounding white space is ignored.
func ParseKEK(b []byte) ([]byte, error) {
	if len(b) == KEKSize {
		return bytes.Clone(b), nil
	}
	s := string(bytes.TrimSpace(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil && len(key) == KEKSize {
			return key, nil
		}
	}
	return nil, fmt.Errorf("key-encryption key: want %d random bytes, raw or base64 (%d bytes given)", KEKSize, len(b))
}

// GenerateKEK returns a new random KEK, base64-encoded with a final newline,
// as written to a key file.
func GenerateKEK() []byte {
	key := make([]byte, KEKSize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	return []byte(base64.StdEncoding.EncodeToString(key) + "\n")
}

// Keyring is the current KEK, which seals, and previous ones, which only
// open (while a rotation re-seals what they sealed).
type Keyring struct {
	current  *KEK
	previous []*KEK
}

// NewKeyring builds a keyring from raw 32-byte keys.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	cur, err := NewKEK(current)
	if err != nil {
		return nil, err
	}
	kr := &Keyring{current: cur}
	for i, p := range previous {
		k, err := NewKEK(p)
		if err != nil {
			return nil, fmt.Errorf("previous %d: %w", i+1, err)
		}
		if k.id != cur.id {
			kr.previous = append(kr.previous, k)
		}
	}
	return kr, nil
}

// CurrentID is the id of the KEK that seals.
func (kr *Keyring) CurrentID() string { return kr.current.ID() }

func ephemeralKeyring() *Keyring {
	key := make([]byte, KEKSize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	kr, _ := NewKeyring(key)
	return kr
}

// sealed reports whether v has the sealed format's magic.
func sealed(v []byte) bool { return bytes.HasPrefix(v, []byte(sealMagic)) }

// seal encrypts the value of the secret name under the current KEK.
func (kr *Keyring) seal(name string, value []byte) []byte {
	k := kr.current
	out := make([]byte, headerSize+nonceSize, headerSize+nonceSize+len(value)+k.aead.Overhead())
	copy(out, sealMagic)
	out[len(sealMagic)] = sealVersion
	copy(out[len(sealMagic)+1:], k.id[:])
	_, _ = rand.Read(out[headerSize:]) // crypto/rand.Read never fails
	return k.aead.Seal(out, out[headerSize:], value, aad(out[:headerSize], name))
}

// open decrypts a sealed value of the secret name. It returns the id of the
// KEK that opened it, so that callers can tell values to re-seal.
func (kr *Keyring) open(name string, v []byte) ([]byte, *KEK, error) {
	if !sealed(v) {
		return nil, nil, fmt.Errorf("secret %q is stored unencrypted; open the store with a key-encryption key and run SealSecrets", name)
	}
	if len(v) < headerSize+nonceSize || v[len(sealMagic)] != sealVersion {
		return nil, nil, fmt.Errorf("secret %q: unknown sealed format", name)
	}
	var id [kekIDSize]byte
	copy(id[:], v[len(sealMagic)+1:headerSize])
	k := kr.byID(id)
	if k == nil {
		return nil, nil, fmt.Errorf("secret %q is sealed under key-encryption key %x, which is not configured (current %s): %w",
			name, id, kr.current.ID(), ErrWrongKEK)
	}
	plain, err := k.aead.Open(nil, v[headerSize:headerSize+nonceSize], v[headerSize+nonceSize:], aad(v[:headerSize], name))
	if err != nil {
		return nil, nil, fmt.Errorf("secret %q does not open with key-encryption key %s (altered, or moved from another name): %w",
			name, k.ID(), ErrWrongKEK)
	}
	return plain, k, nil
}

func (kr *Keyring) byID(id [kekIDSize]byte) *KEK {
	if kr.current.id == id {
		return kr.current
	}
	for _, k := range kr.previous {
		if k.id == id {
			return k
		}
	}
	return nil
}

func aad(header []byte, name string) []byte {
	return append(bytes.Clone(header), name...)
}
