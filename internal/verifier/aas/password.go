package aas

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters of new password hashes.
// Stored hashes carry their own parameters, so changing these does not lock
// anybody out.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultArgon2Params are OWASP's first argon2id recommendation (46 MiB, one
// pass, one lane): a few tens of milliseconds per hash on an idle server core.
var DefaultArgon2Params = Argon2Params{Memory: 46 * 1024, Time: 1, Threads: 1}

// Bounds on the parameters of a stored hash, so that a tampered row cannot make
// one login cost gigabytes or minutes.
const (
	maxArgon2Memory  = 1 << 20 // 1 GiB in KiB
	maxArgon2Time    = 16
	maxArgon2Threads = 16
	argon2SaltLen    = 16
	argon2KeyLen     = 32
	// MaxPasswordLength bounds what is hashed.
	MaxPasswordLength = 1024
)

// ErrWeakPassword is wrapped by every password policy violation.
var ErrWeakPassword = errors.New("password does not meet the policy")

// ErrBadHash is wrapped when a stored hash cannot be parsed.
var ErrBadHash = errors.New("malformed password hash")

func (p Argon2Params) validate() error {
	var errs []error
	if p.Memory < 8*uint32(p.Threads) || p.Memory > maxArgon2Memory {
		errs = append(errs, fmt.Errorf("argon2 memory %d KiB out of range [8*threads, %d]", p.Memory, maxArgon2Memory))
	}
	if p.Time < 1 || p.Time > maxArgon2Time {
		errs = append(errs, fmt.Errorf("argon2 time %d out of range [1, %d]", p.Time, maxArgon2Time))
	}
	if p.Threads < 1 || p.Threads > maxArgon2Threads {
		errs = append(errs, fmt.Errorf("argon2 threads %d out of range [1, %d]", p.Threads, maxArgon2Threads))
	}
	return errors.Join(errs...)
}

// checkPassword applies the password policy.
func checkPassword(pw string, minLen int) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case pw == "":
		return fmt.Errorf("%w: empty", ErrWeakPassword)
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: not valid UTF-8", ErrWeakPassword)
	case n < minLen:
		return fmt.Errorf("%w: %d characters, at least %d required", ErrWeakPassword, n, minLen)
	case len(pw) > MaxPasswordLength:
		return fmt.Errorf("%w: longer than %d bytes", ErrWeakPassword, MaxPasswordLength)
	}
	return nil
}

// hashPassword returns the argon2id PHC string of pw:
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<hash> (unpadded base64).
func hashPassword(pw string, p Argon2Params) ([]byte, error) {
	salt := make([]byte, argon2SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, argon2KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether pw matches the PHC string phc, comparing in
// constant time. A malformed hash is an error, never a match.
func verifyPassword(pw string, phc []byte) (bool, error) {
	p, salt, want, err := parsePHC(string(phc))
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func parsePHC(s string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrBadHash)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrBadHash, parts[2])
	}
	var m, t, th uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &th); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", m, t, th) != parts[3] || th > maxArgon2Threads {
		return p, nil, nil, fmt.Errorf("%w: bad parameters %q", ErrBadHash, parts[3])
	}
	p = Argon2Params{Memory: m, Time: t, Threads: uint8(th)}
	if err := p.validate(); err != nil {
		return p, nil, nil, fmt.Errorf("%w: %w", ErrBadHash, err)
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("%w: bad salt", ErrBadHash)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, fmt.Errorf("%w: bad key", ErrBadHash)
	}
	return p, salt, key, nil
}
