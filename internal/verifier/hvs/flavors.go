package hvs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"trustedcompute.io/tc/internal/appraise"
	"trustedcompute.io/tc/internal/flavor"
	"trustedcompute.io/tc/internal/verifier/store"
)

// EvidenceError refuses to make flavors from a host whose evidence could
// not be had or did not verify: golden measurements come only from a quote
// and logs that verified.
type EvidenceError struct {
	HostID string
	// Status is the host status of the attempt (CONNECTED, CONNECTION_TIMEOUT, ...).
	Status string
	Faults []appraise.Fault
}

func (e *EvidenceError) Error() string {
	var names []string
	for _, f := range e.Faults {
		names = append(names, f.String())
	}
	return fmt.Sprintf("evidence of host %q did not verify (%s): %s", e.HostID, e.Status, strings.Join(names, "; "))
}

// InputError is a request HVS refuses as it is (unknown group, part, ...).
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// DefaultRebaselineParts are the parts a rebaseline remakes when none are named.
func DefaultRebaselineParts() []flavor.Part {
	return []flavor.Part{flavor.PartPlatform, flavor.PartOS, flavor.PartIMA}
}

// groupIDs resolves group names (default: automatic) to IDs.
func (s *Service) groupIDs(ctx context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		names = []string{flavor.GroupAutomatic}
	}
	var ids []string
	for _, n := range names {
		g, err := s.store.FlavorGroupByName(ctx, n)
		if errors.Is(err, store.ErrNotFound) {
			return nil, inputErrorf("flavor group %q does not exist", n)
		} else if err != nil {
			return nil, err
		}
		if !slices.Contains(ids, g.ID) {
			ids = append(ids, g.ID)
		}
	}
	return ids, nil
}

// fromHost pulls a full, fresh set of evidence from the host, requires that
// it verify without a single fault, and makes flavors of the parts bound to
// the host.
func (s *Service) fromHost(ctx context.Context, h store.Host, parts []flavor.Part, now time.Time) ([]flavor.Flavor, error) {
	c, err := s.collect(ctx, h, nil, false, now)
	if err != nil {
		return nil, err
	}
	if c.verdict == nil || len(c.verdict.Faults) > 0 {
		faults := c.faults
		if c.verdict != nil {
			faults = c.verdict.Faults
		}
		return nil, &EvidenceError{HostID: h.ID, Status: c.status, Faults: faults}
	}
	hw, changed, err := s.claimedHardwareUUID(ctx, h, c.resp.HostInfo)
	if err != nil {
		return nil, err
	}
	if changed != nil {
		return nil, &EvidenceError{HostID: h.ID, Status: c.status, Faults: []appraise.Fault{*changed}}
	}
	facts := flavor.FactsFromVerdict(c.verdict)
	fs, err := flavor.FromEvidence(flavor.NewManifest(c.resp.HostInfo, facts), facts, s.templates, parts, s.cfg.NewID, now)
	if err != nil {
		return nil, &InputError{Msg: err.Error()}
	}
	for i := range fs {
		fs[i].Meta.Description.HardwareUUID = hw
		fs[i].Meta.Description.Source = h.Name
	}
	return fs, nil
}

// sign signs flavors with HVS's key and makes their rows.
func (s *Service) sign(ctx context.Context, fs []flavor.Flavor, hostID string, groups []string) ([]store.Flavor, []flavor.SignedFlavor, error) {
	key, err := s.signingKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	var (
		recs   []store.Flavor
		signed []flavor.SignedFlavor
	)
	for _, f := range fs {
		sf, err := flavor.Sign(f, key.key, key.chain)
		if err != nil {
			if errors.Is(err, flavor.ErrInvalid) {
				return nil, nil, &InputError{Msg: err.Error()}
			}
			return nil, nil, err
		}
		rec, err := flavorRecord(sf, hostID, groups)
		if err != nil {
			return nil, nil, err
		}
		recs, signed = append(recs, rec), append(signed, sf)
	}
	return recs, signed, nil
}

func flavorRecord(sf flavor.SignedFlavor, hostID string, groups []string) (store.Flavor, error) {
	b, err := json.Marshal(sf)
	if err != nil {
		return store.Flavor{}, fmt.Errorf("encode flavor %q: %w", sf.Flavor.Meta.ID, err)
	}
	d := sf.Flavor.Meta.Description
	return store.Flavor{ID: sf.Flavor.Meta.ID, Part: string(d.FlavorPart), Label: d.Label, HostID: hostID,
		HardwareUUID: d.HardwareUUID, Signed: b, GroupIDs: groups, CreatedAt: d.CreatedAt}, nil
}

func (s *Service) storeFlavors(ctx context.Context, recs []store.Flavor) error {
	return s.store.InTx(ctx, func(tx *store.Tx) error {
		for _, r := range recs {
			if err := tx.CreateFlavor(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// FlavorsFromHost makes, signs and stores flavors of the parts from the
// host's fresh, verified evidence, in the named groups (default automatic).
func (s *Service) FlavorsFromHost(ctx context.Context, hostID string, parts []flavor.Part, groupNames []string) ([]flavor.SignedFlavor, error) {
	_, recs, signed, err := s.signFromHost(ctx, hostID, parts, groupNames)
	if err != nil {
		return nil, err
	}
	if err := s.storeFlavors(ctx, recs); err != nil {
		return nil, err
	}
	return signed, nil
}

// signFromHost makes and signs flavors of the parts from the host's fresh,
// verified evidence, in the named groups (default automatic).
func (s *Service) signFromHost(ctx context.Context, hostID string, parts []flavor.Part, groupNames []string) (store.Host, []store.Flavor, []flavor.SignedFlavor, error) {
	h, err := s.store.HostByID(ctx, hostID)
	if err != nil {
		return store.Host{}, nil, nil, err
	}
	groups, err := s.groupIDs(ctx, groupNames)
	if err != nil {
		return store.Host{}, nil, nil, err
	}
	fs, err := s.fromHost(ctx, h, parts, s.cfg.Now())
	if err != nil {
		return store.Host{}, nil, nil, err
	}
	recs, signed, err := s.sign(ctx, fs, h.ID, groups)
	return h, recs, signed, err
}

// Rebaseline makes new flavors of the parts (default PLATFORM, OS, IMA)
// from the host's fresh, verified evidence and, in one transaction, replaces
// the host's bound flavors of those parts with them (in group automatic).
// When anything fails, the old flavors stay.
func (s *Service) Rebaseline(ctx context.Context, hostID string, parts []flavor.Part) ([]flavor.SignedFlavor, error) {
	if len(parts) == 0 {
		parts = DefaultRebaselineParts()
	}
	h, recs, signed, err := s.signFromHost(ctx, hostID, parts, nil)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = string(p)
	}
	err = s.store.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.DeleteHostFlavors(ctx, h.ID, names); err != nil {
			return err
		}
		for _, r := range recs {
			if err := tx.CreateFlavor(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rebaseline host %q: %w", h.ID, err)
	}
	return signed, nil
}

// ImportFlavors signs and stores uploaded flavors, all or none. They are
// fleet-wide unless meta.description.hardware_uuid names a host.
func (s *Service) ImportFlavors(ctx context.Context, c flavor.FlavorCollection, groupNames []string) ([]flavor.SignedFlavor, error) {
	if n := len(c.Flavors); n == 0 || n > flavor.MaxCollectionFlavors {
		return nil, inputErrorf("flavor_collection holds %d flavors, want 1 to %d", n, flavor.MaxCollectionFlavors)
	}
	groups, err := s.groupIDs(ctx, groupNames)
	if err != nil {
		return nil, err
	}
	for i := range c.Flavors {
		if c.Flavors[i].Meta.Description.CreatedAt.IsZero() {
			c.Flavors[i].Meta.Description.CreatedAt = s.cfg.Now().UTC()
		}
		if err := c.Flavors[i].Validate(); err != nil {
			return nil, inputErrorf("flavor %d: %v", i, err)
		}
	}
	recs, signed, err := s.sign(ctx, c.Flavors, "", groups)
	if err != nil {
		return nil, err
	}
	if err := s.storeFlavors(ctx, recs); err != nil {
		return nil, err
	}
	return signed, nil
}

// ImportSignedFlavors stores flavors signed elsewhere, all or none, when
// every signature verifies as the verifier's own signing identity
// (internal/signerid: HVS Signing ← Verifier Signing CA ← the CMS root).
func (s *Service) ImportSignedFlavors(ctx context.Context, c flavor.SignedFlavorCollection, groupNames []string) ([]flavor.SignedFlavor, error) {
	if n := len(c.SignedFlavors); n == 0 || n > flavor.MaxCollectionFlavors {
		return nil, inputErrorf("signed_flavor_collection holds %d flavors, want 1 to %d", n, flavor.MaxCollectionFlavors)
	}
	groups, err := s.groupIDs(ctx, groupNames)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var recs []store.Flavor
	for i, sf := range c.SignedFlavors {
		if err := sf.Flavor.Validate(); err != nil {
			return nil, inputErrorf("flavor %d: %v", i, err)
		}
		if err := flavor.Verify(sf, s.roots, now); err != nil {
			return nil, inputErrorf("flavor %d: %v", i, err)
		}
		rec, err := flavorRecord(sf, "", groups)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if err := s.storeFlavors(ctx, recs); err != nil {
		return nil, err
	}
	return c.SignedFlavors, nil
}
