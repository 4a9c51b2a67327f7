package hvs

import (
	"bytes"
	"context"
	"sync"

	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/store"
)

// maxCachedPolicies bounds the hosts whose report policies a Service
// keeps: a fleet of 10,000 hosts holds about 20 MB of them.
const maxCachedPolicies = 1 << 16

// policyCache keeps, per host, the policies (store.ReportPolicies: groups,
// flavor references, IMA policy references) its last report read, for
// the hardware UUID it read them for and with the policy generation they
// are of. Every change of a group, flavor, group membership or IMA policy
// moves the generation in the database (store's write functions), through
// whichever replica makes it; a report reads the current generation with
// its host (store.HostForReport) and uses the kept policies only at that
// generation, and its commit stores it only if the generation has not
// moved since (store.HostReported.PolicyGeneration). The policies kept are
// shared between reports: nobody may change them.
type policyCache struct {
	mu     sync.Mutex
	byHost map[string]cachedPolicies
	// groups are the flavor groups of the policies, decoded.
	groups groupMemo
}

type cachedPolicies struct {
	hardwareUUID string
	pol          store.ReportPolicies
}

func newPolicyCache() *policyCache {
	return &policyCache{byHost: map[string]cachedPolicies{}, groups: groupMemo{byID: map[string]decodedGroup{}}}
}

// get returns the policies kept for the host and hardware UUID at
// generation gen.
func (c *policyCache) get(hostID, hardwareUUID string, gen int64) (store.ReportPolicies, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byHost[hostID]
	if !ok || e.hardwareUUID != hardwareUUID || e.pol.Generation != gen {
		return store.ReportPolicies{}, false
	}
	return e.pol, true
}

// put keeps the host's policies read for the hardware UUID, unless it
// keeps policies of a later generation.
func (c *policyCache) put(hostID, hardwareUUID string, pol store.ReportPolicies) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byHost[hostID]; ok && e.pol.Generation > pol.Generation {
		return
	}
	if _, ok := c.byHost[hostID]; !ok && len(c.byHost) >= maxCachedPolicies {
		for id := range c.byHost { // any one
			delete(c.byHost, id)
			break
		}
	}
	c.byHost[hostID] = cachedPolicies{hardwareUUID: hardwareUUID, pol: pol}
}

// reportPolicies returns the policies a report of the host applies, for
// the hardware UUID: kept ones at generation gen (the generation
// HostForReport read), or else the stored ones, which it keeps. gen 0
// asks for the stored ones.
func (s *Service) reportPolicies(ctx context.Context, hostID, hardwareUUID string, gen int64) (store.ReportPolicies, error) {
	if gen != 0 {
		if pol, ok := s.policies.get(hostID, hardwareUUID, gen); ok {
			return pol, nil
		}
	}
	pol, err := s.store.ReportPolicies(ctx, hostID, hardwareUUID)
	if err != nil {
		return store.ReportPolicies{}, err
	}
	s.policies.put(hostID, hardwareUUID, pol)
	return pol, nil
}

// maxDecodedGroups bounds the flavor groups a groupMemo keeps; past it the
// memo starts over.
const maxDecodedGroups = 4096

// groupMemo keeps flavor groups decoded from their rows (decodeGroup), by
// group ID with the name and match policies bytes each was decoded from:
// a row that differs in either is decoded again, so a changed group is
// never evaluated by its old policies. The groups kept are shared between
// reports: nobody may change them.
type groupMemo struct {
	mu   sync.Mutex
	byID map[string]decodedGroup
}

type decodedGroup struct {
	name     string
	policies []byte
	group    flavor.Group
}

// decode is decodeGroup(rec), decoded once for the same row.
func (m *groupMemo) decode(rec store.FlavorGroup) (flavor.Group, error) {
	m.mu.Lock()
	d, ok := m.byID[rec.ID]
	m.mu.Unlock()
	if ok && d.name == rec.Name && bytes.Equal(d.policies, rec.Policies) {
		return d.group, nil
	}
	g, err := decodeGroup(rec)
	if err != nil {
		return g, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.byID) >= maxDecodedGroups {
		clear(m.byID)
	}
	m.byID[rec.ID] = decodedGroup{name: rec.Name, policies: bytes.Clone(rec.Policies), group: g}
	return g, nil
}
