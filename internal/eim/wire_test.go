package eim

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"trustedcompute.io/tc/internal/eim/attestmgrv1"
)

// The EIM speaks this wire format; a renumbered field or a renamed service
// would silently break interoperability.
func TestGeneratedCodeMatchesTheEIMWireFormat(t *testing.T) {
	if got, want := attestmgrv1.AttestationStatusMgrService_UpdateInstanceAttestationStatusByHostGuid_FullMethodName,
		"/attestmgr.v1.AttestationStatusMgrService/UpdateInstanceAttestationStatusByHostGuid"; got != want {
		t.Errorf("method %q, want %q", got, want)
	}
	req := (&attestmgrv1.UpdateInstanceAttestationStatusByHostGuidRequest{}).ProtoReflect().Descriptor()
	if got := req.FullName(); got != "attestmgr.v1.UpdateInstanceAttestationStatusByHostGuidRequest" {
		t.Errorf("request message %q", got)
	}
	fields := []struct {
		name   protoreflect.Name
		number protoreflect.FieldNumber
		kind   protoreflect.Kind
	}{
		{"host_guid", 1, protoreflect.StringKind},
		{"attestation_status", 2, protoreflect.EnumKind},
		{"attestation_status_detail", 3, protoreflect.StringKind},
	}
	if req.Fields().Len() != len(fields) {
		t.Errorf("request has %d fields, want %d", req.Fields().Len(), len(fields))
	}
	for _, f := range fields {
		fd := req.Fields().ByName(f.name)
		if fd == nil || fd.Number() != f.number || fd.Kind() != f.kind {
			t.Errorf("field %s: got %v, want number %d kind %s", f.name, fd, f.number, f.kind)
		}
	}
	resp := (&attestmgrv1.UpdateInstanceAttestationStatusByHostGuidResponse{}).ProtoReflect().Descriptor()
	if resp.FullName() != "attestmgr.v1.UpdateInstanceAttestationStatusByHostGuidResponse" || resp.Fields().Len() != 0 {
		t.Errorf("response %s with %d fields, want the empty attestmgr.v1 response", resp.FullName(), resp.Fields().Len())
	}
	values := map[attestmgrv1.AttestationStatus]string{
		0: "ATTESTATION_STATUS_UNSPECIFIED",
		1: "ATTESTATION_STATUS_VERIFIED",
		2: "ATTESTATION_STATUS_FAILED",
	}
	if n := attestmgrv1.AttestationStatus(0).Descriptor().Values().Len(); n != len(values) {
		t.Errorf("enum has %d values, want %d", n, len(values))
	}
	for number, name := range values {
		if got := number.String(); got != name {
			t.Errorf("enum value %d is %s, want %s", number, got, name)
		}
	}
	if StatusVerified.proto() != attestmgrv1.AttestationStatus_ATTESTATION_STATUS_VERIFIED ||
		StatusFailed.proto() != attestmgrv1.AttestationStatus_ATTESTATION_STATUS_FAILED {
		t.Error("Status does not map to the wire enum")
	}
}
