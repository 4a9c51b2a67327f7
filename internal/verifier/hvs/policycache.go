package hvs

import (
	"context"
	"sync"

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
}

type cachedPolicies struct {
	hardwareUUID string
	pol          store.ReportPolicies
}

func newPolicyCache() *policyCache { return &policyCache{byHost: map[string]cachedPolicies{}} }

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
