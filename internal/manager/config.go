package manager

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// GoldenFlavors says when a node's own measurements become its golden
// flavors.
type GoldenFlavors string

// The golden flavor policies.
const (
	// EveryBoot re-baselines PLATFORM, OS and IMA after every reboot (the
	// seed's rule) and when the host has no automatic flavors yet.
	EveryBoot GoldenFlavors = "everyBoot"
	// FirstBoot baselines only a host that has no automatic flavors yet.
	FirstBoot GoldenFlavors = "firstBoot"
	// Provided never baselines: the operator provides the flavors.
	Provided GoldenFlavors = "provided"
)

// Defaults and bounds.
const (
	DefaultPollDuration    = 60 * time.Minute
	DefaultJitter          = 0.1
	DefaultConcurrency     = 4
	DefaultRefreshInterval = 30 * time.Second
	DefaultRetryMin        = 30 * time.Second
	MinPollDuration        = time.Minute
	MaxPollDuration        = 7 * 24 * time.Hour
	MaxJitter              = 0.5
)

// Config is the manager's policy.
type Config struct {
	// PollDuration is the time between attestations of a node
	// (DefaultPollDuration); a node's AnnotationPollDuration overrides it.
	PollDuration time.Duration
	// Jitter spreads each next attestation uniformly over
	// PollDuration ± Jitter·PollDuration so that a fleet does not attest
	// in lock step. 0 takes DefaultJitter; a negative value turns it off.
	Jitter float64
	// GoldenFlavors is the baseline policy (EveryBoot when empty).
	GoldenFlavors GoldenFlavors
	// EvictNamespaces lists the namespaces whose pods are evicted from a
	// node when it fails (none when empty: cordon only).
	EvictNamespaces []string
	// Concurrency bounds the nodes evaluated at the same time: the
	// controller's workers unless ControllerOptions.Workers says otherwise
	// (see Workers to size it from the fleet).
	Concurrency int
	// RefreshInterval is no longer used by the controller, which watches
	// Nodes and the onboard requests and so sees a change at once; it is
	// kept, and validated, so that configurations that set it still load.
	RefreshInterval time.Duration
	// RetryMin is the first wait after the verifier failed; it doubles up to
	// the poll duration.
	RetryMin time.Duration
	// DiskEncryption is the disk encryption that makes a Verified node
	// ready: DiskEncryptionMeasured (default) or DiskEncryptionClaimed.
	DiskEncryption DiskEncryptionPolicy
	// NodeBinding says whether a report must name the Node its agent runs
	// on: NodeBindingReported (default) or NodeBindingRequired.
	NodeBinding NodeBindingPolicy
	// MaxEvidenceAge is the age of the newest evidence past which a node is
	// no longer Verified nor ready: its ready label goes, its status turns
	// unknown and its condition says why (never a cordon: a verifier outage
	// must not drain the fleet). Default twice PollDuration. A node is
	// attested again before its evidence is this old, whatever its own
	// poll-duration annotation says.
	MaxEvidenceAge time.Duration
}

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	c.PollDuration = cmp.Or(c.PollDuration, DefaultPollDuration)
	switch {
	case c.Jitter == 0:
		c.Jitter = DefaultJitter
	case c.Jitter < 0:
		c.Jitter = 0
	}
	c.GoldenFlavors = cmp.Or(c.GoldenFlavors, EveryBoot)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.RefreshInterval = cmp.Or(c.RefreshInterval, DefaultRefreshInterval)
	c.RetryMin = cmp.Or(c.RetryMin, DefaultRetryMin)
	c.DiskEncryption = cmp.Or(c.DiskEncryption, DiskEncryptionMeasured)
	c.NodeBinding = cmp.Or(c.NodeBinding, NodeBindingReported)
	c.MaxEvidenceAge = cmp.Or(c.MaxEvidenceAge, 2*c.PollDuration)
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.PollDuration < MinPollDuration || c.PollDuration > MaxPollDuration {
		errs = append(errs, fmt.Errorf("poll duration %s: want %s to %s", c.PollDuration, MinPollDuration, MaxPollDuration))
	}
	if c.Jitter < 0 || c.Jitter > MaxJitter {
		errs = append(errs, fmt.Errorf("jitter %v: want 0 to %v", c.Jitter, MaxJitter))
	}
	switch c.GoldenFlavors {
	case EveryBoot, FirstBoot, Provided:
	default:
		errs = append(errs, fmt.Errorf("golden flavors %q: want %s, %s or %s", c.GoldenFlavors, EveryBoot, FirstBoot, Provided))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: want at least 1", c.Concurrency))
	}
	if c.RefreshInterval < time.Second {
		errs = append(errs, fmt.Errorf("refresh interval %s: want at least 1s", c.RefreshInterval))
	}
	if c.RetryMin <= 0 {
		errs = append(errs, fmt.Errorf("retry min %s: want more than 0", c.RetryMin))
	}
	if err := c.DiskEncryption.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.NodeBinding.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxEvidenceAge < c.PollDuration {
		errs = append(errs, fmt.Errorf("max evidence age %s: want at least the poll duration %s", c.MaxEvidenceAge, c.PollDuration))
	}
	for _, ns := range c.EvictNamespaces {
		if ns == "" {
			errs = append(errs, errors.New("evict namespaces: empty name"))
		}
	}
	return errors.Join(errs...)
}
