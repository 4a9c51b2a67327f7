package eim

import (
	"fmt"

	"google.golang.org/grpc/codes"
)

// InvalidUpdateError is an update refused before it is sent.
type InvalidUpdateError struct {
	// Field is the request field at fault, e.g. "host_guid".
	Field  string
	Reason string
}

func (e *InvalidUpdateError) Error() string {
	return fmt.Sprintf("invalid eim update: %s: %s", e.Field, e.Reason)
}

// TokenError is a bearer token file that cannot be used. It never holds
// the token.
type TokenError struct {
	Path string
	Err  error
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("eim bearer token %s: %v", e.Path, e.Err)
}

func (e *TokenError) Unwrap() error { return e.Err }

// RejectedError is an update the EIM refused with a code that retrying does
// not change, such as InvalidArgument, NotFound (unknown host GUID),
// PermissionDenied or Unauthenticated.
type RejectedError struct {
	HostGUID string
	Code     codes.Code
	Message  string
	// Attempts is the number of calls made, the refused one included.
	Attempts int
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("eim refused the update of host %s: %s: %s", e.HostGUID, e.Code, e.Message)
}

// ExhaustedError is an update whose every attempt failed with a transient
// code (Unavailable, DeadlineExceeded, ResourceExhausted, Aborted), or
// whose context ended between attempts.
type ExhaustedError struct {
	HostGUID string
	Attempts int
	// Last is the error of the last attempt.
	Last error
	// Ctx is the context's error when the context ended first, else nil.
	Ctx error
}

func (e *ExhaustedError) Error() string {
	msg := fmt.Sprintf("eim update of host %s failed after %d attempts: %v", e.HostGUID, e.Attempts, e.Last)
	if e.Ctx != nil {
		msg += ": gave up: " + e.Ctx.Error()
	}
	return msg
}

// Unwrap returns the last attempt's error and the context's error, so that
// errors.Is(err, context.Canceled) works.
func (e *ExhaustedError) Unwrap() []error {
	errs := []error{e.Last}
	if e.Ctx != nil {
		errs = append(errs, e.Ctx)
	}
	return errs
}
