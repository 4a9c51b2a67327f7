package cmstest_test

import (
	"testing"
	"time"

	"trustedcompute.io/tc/internal/verifier/cms/cmstest"
)

func TestNewCAUsesTheGivenClock(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	ca := cmstest.NewCA(t, now)
	if nb := ca.Root().NotBefore; !nb.Before(now) || now.Sub(nb) > 24*time.Hour {
		t.Fatalf("root starts at %s for a clock at %s", nb, now)
	}
}
