package bus

import (
	"errors"
	"slices"
	"testing"
)

func TestManagerRenewalSubjects(t *testing.T) {
	renew, err := ManagerRenewSubject("am")
	if err != nil || renew != "trust-credentials-manager.am.renew" {
		t.Fatalf("ManagerRenewSubject = %q, %v", renew, err)
	}
	issued, err := ManagerIssuedSubject("am")
	if err != nil || issued != "trust-credentials-manager.am.issued" {
		t.Fatalf("ManagerIssuedSubject = %q, %v", issued, err)
	}
	if name, err := ParseManagerRenewSubject(renew); err != nil || name != "am" {
		t.Fatalf("ParseManagerRenewSubject(%q) = %q, %v", renew, name, err)
	}
	tests := []struct {
		name, subject string
	}{
		{"an answer subject is not a renewal", issued},
		{"an agent's renewal is not a manager's", "trust-credentials.am.renew"},
		{"a wildcard name is refused", "trust-credentials-manager.*.renew"},
		{"an extra token is refused", "trust-credentials-manager.am.x.renew"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseManagerRenewSubject(tt.subject); !errors.Is(err, ErrInvalidSubject) {
				t.Fatalf("ParseManagerRenewSubject(%q) = %v, want ErrInvalidSubject", tt.subject, err)
			}
		})
	}
	if _, err := ManagerRenewSubject("a.>"); !errors.Is(err, ErrInvalidHostID) {
		t.Fatalf("ManagerRenewSubject with a wildcard name = %v, want ErrInvalidHostID", err)
	}
}

func TestManagerSubjectsAreTheManagersOwnAndNoOther(t *testing.T) {
	sub, pub, err := ManagerSubjects("am")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"trust-credentials-manager.am.issued"}; !slices.Equal(sub, want) {
		t.Errorf("ManagerSubjects(am) sub = %q, want %q", sub, want)
	}
	if want := []string{"trust-credentials-manager.am.renew"}; !slices.Equal(pub, want) {
		t.Errorf("ManagerSubjects(am) pub = %q, want %q", pub, want)
	}
	for _, name := range []string{"", "*", ">", "am.>", "a m"} {
		if _, _, err := ManagerSubjects(name); !errors.Is(err, ErrInvalidHostID) {
			t.Errorf("ManagerSubjects(%q) = %v, want ErrInvalidHostID", name, err)
		}
	}
}

func TestManagerName(t *testing.T) {
	tests := []struct {
		name, user, want string
		ok               bool
	}{
		{"a manager user names its manager", "manager:am", "am", true},
		{"an agent user is not a manager", "agent:am", "", false},
		{"a manager user with a wildcard is refused", "manager:*", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ManagerName(tt.user)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("ManagerName(%q) = %q, %v, want %q, %v", tt.user, got, ok, tt.want, tt.ok)
			}
		})
	}
}
