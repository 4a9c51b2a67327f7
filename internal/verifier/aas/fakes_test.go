package aas

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"trustedcompute.io/tc/internal/bus"
	"trustedcompute.io/tc/internal/clock"
	"trustedcompute.io/tc/internal/testca"
	"trustedcompute.io/tc/internal/verifier/api"
	"trustedcompute.io/tc/internal/verifier/cms"
)

// fakeClock is the shared settable clock.
type fakeClock = clock.Fake

func newFakeClock() *fakeClock { return clock.NewFake(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)) }

// fakeStore is an in-memory Store.
type fakeStore struct {
	mu        sync.Mutex
	users     map[string]User
	roles     map[string]Role
	userRoles map[string][]string
	failures  map[loginKey][]time.Time
	locks     map[loginKey]time.Time
	sources   map[string]*sourceCount // failed logins per source, across users
	secrets   map[string][]byte
	writes    int // number of successful mutations
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		users: map[string]User{}, roles: map[string]Role{}, userRoles: map[string][]string{},
		failures: map[loginKey][]time.Time{}, locks: map[loginKey]time.Time{}, secrets: map[string][]byte{},
		sources: map[string]*sourceCount{},
	}
}

// sourceCount is a source's window of failed logins and its refusal.
type sourceCount struct {
	start        time.Time
	failures     int
	refusedUntil time.Time
}

func (s *fakeStore) CountLoginSourceFailure(_ context.Context, source string, at, since time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.sources[source]
	if !ok {
		c = &sourceCount{}
		s.sources[source] = c
	}
	if !c.start.After(since) {
		c.start, c.failures = at, 0
	}
	c.failures++
	return c.failures, nil
}

func (s *fakeStore) RefuseLoginSource(_ context.Context, source string, until, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[source] = &sourceCount{start: now, refusedUntil: until}
	return nil
}

func (s *fakeStore) LoginSourceRefusedUntil(_ context.Context, source string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.sources[source]; ok {
		return c.refusedUntil, nil
	}
	return time.Time{}, nil
}

func (s *fakeStore) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *fakeStore) CreateUser(_ context.Context, u User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.users {
		if e.Name == u.Name {
			return fmt.Errorf("user %q: %w", u.Name, ErrConflict)
		}
	}
	if _, ok := s.users[u.ID]; ok {
		return fmt.Errorf("user %q: %w", u.ID, ErrConflict)
	}
	u.TokenGeneration = 0
	s.users[u.ID] = u
	s.writes++
	return nil
}

func (s *fakeStore) UserByName(_ context.Context, name string) (User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.users {
		if u.Name == name {
			return u, nil
		}
	}
	return User{}, fmt.Errorf("user %q: %w", name, ErrNotFound)
}

func (s *fakeStore) UserByID(_ context.Context, id string) (User, error) {
	return lookup(s, s.users, "user", id)
}

func (s *fakeStore) ListUsers(context.Context) ([]User, error) {
	return sortedBy(s, s.users, func(u User) string { return u.Name }), nil
}

// lookup returns m[id], or an error wrapping ErrNotFound.
func lookup[V any](s *fakeStore, m map[string]V, kind, id string) (V, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := m[id]
	if !ok {
		return v, fmt.Errorf("%s %q: %w", kind, id, ErrNotFound)
	}
	return v, nil
}

// sortedBy returns the values of m ordered by key.
func sortedBy[V any](s *fakeStore, m map[string]V, key func(V) string) []V {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []V
	for _, v := range m {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b V) int { return strings.Compare(key(a), key(b)) })
	return out
}

// UpdateUserPassword, RemoveUserRole, DeleteRole and SetRolePermissions move
// the token generation on, as the real store does.
func (s *fakeStore) UpdateUserPassword(_ context.Context, id string, hash []byte) error {
	return s.updateUser(id, func(u *User) { u.PasswordHash = hash; u.TokenGeneration++ })
}

// revokeHolders moves on the generation of the holders of role id; s.mu is held.
func (s *fakeStore) revokeHolders(id string) {
	for uid, ids := range s.userRoles {
		if u, ok := s.users[uid]; ok && slices.Contains(ids, id) {
			u.TokenGeneration++
			s.users[uid] = u
		}
	}
}

func (s *fakeStore) SetUserLockedUntil(_ context.Context, id string, t time.Time) error {
	return s.updateUser(id, func(u *User) { u.LockedUntil = t })
}

func (s *fakeStore) updateUser(id string, f func(*User)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	f(&u)
	s.users[id] = u
	s.writes++
	return nil
}

func (s *fakeStore) DeleteUser(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[id]; !ok {
		return fmt.Errorf("user %q: %w", id, ErrNotFound)
	}
	delete(s.users, id)
	delete(s.userRoles, id)
	s.forgetLogins(id)
	s.writes++
	return nil
}

func (s *fakeStore) CreateRole(_ context.Context, r Role) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.roles {
		if e.Service == r.Service && e.Name == r.Name && e.Context == r.Context {
			return fmt.Errorf("role %s:%s: %w", r.Service, r.Name, ErrConflict)
		}
	}
	r.Permissions = slices.Clone(r.Permissions)
	s.roles[r.ID] = r
	s.writes++
	return nil
}

func (s *fakeStore) RoleByID(_ context.Context, id string) (Role, error) {
	return lookup(s, s.roles, "role", id)
}

func (s *fakeStore) ListRoles(context.Context) ([]Role, error) {
	return sortedBy(s, s.roles, func(r Role) string { return r.ID }), nil
}

func (s *fakeStore) DeleteRole(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.roles[id]; !ok {
		return fmt.Errorf("role %q: %w", id, ErrNotFound)
	}
	s.revokeHolders(id)
	delete(s.roles, id)
	for u, ids := range s.userRoles {
		s.userRoles[u] = slices.DeleteFunc(ids, func(x string) bool { return x == id })
	}
	s.writes++
	return nil
}

func (s *fakeStore) SetRolePermissions(_ context.Context, id string, perms []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[id]
	if !ok {
		return fmt.Errorf("role %q: %w", id, ErrNotFound)
	}
	r.Permissions = slices.Clone(perms)
	s.roles[id] = r
	s.revokeHolders(id)
	s.writes++
	return nil
}

func (s *fakeStore) AddUserRoles(_ context.Context, userID string, roleIDs []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return fmt.Errorf("user %q: %w", userID, ErrNotFound)
	}
	for _, id := range roleIDs {
		if _, ok := s.roles[id]; !ok {
			return fmt.Errorf("role %q: %w", id, ErrNotFound)
		}
	}
	for _, id := range roleIDs {
		if !slices.Contains(s.userRoles[userID], id) {
			s.userRoles[userID] = append(s.userRoles[userID], id)
		}
	}
	s.writes++
	return nil
}

func (s *fakeStore) RemoveUserRole(_ context.Context, userID, roleID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.userRoles[userID]
	i := slices.Index(ids, roleID)
	if i < 0 {
		return fmt.Errorf("user role %q %q: %w", userID, roleID, ErrNotFound)
	}
	s.userRoles[userID] = slices.Delete(ids, i, i+1)
	if u, ok := s.users[userID]; ok {
		u.TokenGeneration++
		s.users[userID] = u
	}
	s.writes++
	return nil
}

func (s *fakeStore) UserRoles(_ context.Context, userID string) ([]Role, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Role
	for _, id := range s.userRoles[userID] {
		out = append(out, s.roles[id])
	}
	return out, nil
}

// loginKey is a (user, source) pair of the lockout.
type loginKey struct{ user, source string }

func (s *fakeStore) RecordSourceLoginFailure(_ context.Context, userID, source string, at, since time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return 0, fmt.Errorf("user %q: %w", userID, ErrNotFound)
	}
	k := loginKey{userID, source}
	s.failures[k] = append(s.failures[k], at)
	n := 0
	for _, t := range s.failures[k] {
		if !t.Before(since) {
			n++
		}
	}
	return n, nil
}

func (s *fakeStore) LockLoginSource(_ context.Context, userID, source string, until, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return fmt.Errorf("user %q: %w", userID, ErrNotFound)
	}
	k := loginKey{userID, source}
	s.locks[k] = until
	delete(s.failures, k)
	return nil
}

func (s *fakeStore) LoginSourceLockedUntil(_ context.Context, userID, source string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locks[loginKey{userID, source}], nil
}

func (s *fakeStore) ClearSourceLoginFailures(_ context.Context, userID, source string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, loginKey{userID, source})
	return nil
}

func (s *fakeStore) ClearLoginFailures(_ context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	deleteOfUser(s.failures, userID)
	return nil
}

func (s *fakeStore) ClearLoginLocks(_ context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	deleteOfUser(s.locks, userID)
	return nil
}

// forgetLogins deletes the failures and locks of a deleted user; s.mu held.
func (s *fakeStore) forgetLogins(userID string) {
	deleteOfUser(s.failures, userID)
	deleteOfUser(s.locks, userID)
}

func deleteOfUser[V any](m map[loginKey]V, userID string) {
	for k := range m {
		if k.user == userID {
			delete(m, k)
		}
	}
}

func (s *fakeStore) GetSecret(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.secrets[name]
	if !ok {
		return nil, fmt.Errorf("secret %q: %w", name, ErrNotFound)
	}
	return v, nil
}

func (s *fakeStore) CreateSecret(_ context.Context, name string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.secrets[name]; ok {
		return fmt.Errorf("secret %q: %w", name, ErrConflict)
	}
	s.secrets[name] = value
	s.writes++
	return nil
}

// fakeCA issues signing certificates under a two-level CA, on a fake clock.
type fakeCA struct {
	now    func() time.Time
	root   *x509.Certificate
	inter  *x509.Certificate
	ikey   *ecdsa.PrivateKey
	issued int
	mu     sync.Mutex
	fail   error
}

func newFakeCA(t testing.TB, now func() time.Time) *fakeCA {
	t.Helper()
	rkey := testca.NewKey(t)
	ikey := testca.NewKey(t)
	start := now().Add(-time.Hour)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: start, NotAfter: start.Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}
	root := testca.Sign(t, rootTmpl, rootTmpl, &rkey.PublicKey, rkey)
	inter := testca.Sign(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test signing ca"},
		NotBefore: start, NotAfter: start.Add(5 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, root, &ikey.PublicKey, rkey)
	return &fakeCA{now: now, root: root, inter: inter, ikey: ikey}
}

func (ca *fakeCA) IssueSigning(pub crypto.PublicKey, cn string, ttl time.Duration) ([]*x509.Certificate, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.fail != nil {
		return nil, ca.fail
	}
	ca.issued++
	now := ca.now()
	leaf, err := cms.Certify(&x509.Certificate{
		SerialNumber: big.NewInt(int64(100 + ca.issued)), Subject: pkix.Name{CommonName: cn},
		NotBefore: now, NotAfter: now.Add(ttl), KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca.inter, pub, ca.ikey)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{leaf, ca.inter, ca.root}, nil
}

func (ca *fakeCA) Issued() int {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.issued
}

// disabledHost is a host fakeCreds refuses, as the verifier's issuer
// refuses a disabled host.
const disabledHost = "disabled-1"

// fakeCreds records credential requests.
type fakeCreds struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeCreds) AgentCredentials(hostID string, g bus.AgentGrammar, ttl time.Duration) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "agent:"+hostID+" "+g.String())
	if hostID == disabledHost {
		return nil, api.Errorf(api.KindConflict, "the host is disabled")
	}
	return []byte("-----BEGIN NATS USER JWT-----\nagent " + hostID + "\n"), nil
}

func (f *fakeCreds) ServiceCredentials(name string, ttl time.Duration) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "service:"+name)
	return []byte("-----BEGIN NATS USER JWT-----\nservice " + name + "\n"), nil
}

func (f *fakeCreds) ManagerCredentials(name string, ttl time.Duration) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "manager:"+name)
	return []byte("-----BEGIN NATS USER JWT-----\nmanager " + name + "\n"), nil
}

// fixture is an AAS on fakes.
type fixture struct {
	aas   *AAS
	store *fakeStore
	ca    *fakeCA
	creds *fakeCreds
	clock *fakeClock
	mux   *http.ServeMux
}

const adminPassword = "correct horse battery staple"

// testConfig has cheap argon2 parameters and the fake clock.
func testConfig(clock *fakeClock) Config {
	return Config{
		Argon2:        Argon2Params{Memory: 64, Time: 1, Threads: 1},
		AdminPassword: adminPassword,
		Now:           clock.Now,
	}
}

func newFixture(t testing.TB, edit ...func(*Config)) *fixture {
	t.Helper()
	clock := newFakeClock()
	cfg := testConfig(clock)
	for _, e := range edit {
		e(&cfg)
	}
	f := &fixture{store: newFakeStore(), ca: newFakeCA(t, clock.Now), creds: &fakeCreds{}, clock: clock, mux: http.NewServeMux()}
	a, err := New(context.Background(), cfg, f.store, f.ca, f.creds, discardLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.aas = a
	a.Register(f.mux)
	return f
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
