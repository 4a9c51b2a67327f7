package restapi

import "time"

// AKEnrollmentRequest is the body of POST /hvs/v2/aik-enrollments.
type AKEnrollmentRequest struct {
	HostID string `json:"host_id"`
}

// AKEnrollment is an enrolled AK as the API shows it.
type AKEnrollment struct {
	HostID string `json:"host_id"`
	// AKName is the TPM name of the AK in hex.
	AKName string `json:"ak_name"`
	// AKCertificate is the AK certificate the privacy CA issued, as PEM.
	AKCertificate string    `json:"ak_certificate"`
	Created       time.Time `json:"created"`
}
