package flavor

import (
	"slices"
	"testing"

	"trustedcompute.io/tc/internal/appraise"
)

func TestFaultEntriesMarkDescriptionsTheDigestDoesNotCover(t *testing.T) {
	verified := appraise.Event{Index: 7, Type: 0x800000e0, TypeName: "EV_EFI_VARIABLE_AUTHORITY", Digest: "aa", Description: "db", Verified: true}
	claimed := appraise.Event{Index: 4, Type: 0x80000003, TypeName: "EV_EFI_BOOT_SERVICES_APPLICATION", Digest: "bb", Description: `\EFI\BOOT\BOOTX64.EFI`}
	_, unexpected := diffEvents(nil, []EventDigest{eventDigest(verified), eventDigest(claimed)})
	want := []string{"EV_EFI_VARIABLE_AUTHORITY db aa", `EV_EFI_BOOT_SERVICES_APPLICATION \EFI\BOOT\BOOTX64.EFI (unverified) bb`}
	if !slices.Equal(unexpected, want) {
		t.Fatalf("unexpected entries %q, want %q", unexpected, want)
	}
}
