// Package api holds what every HTTP service of the verifier shares: strict JSON
// decoding, the one place where errors become HTTP status codes, and the TLS
// 1.3 server settings.
package api

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes is the default limit for request bodies.
const MaxBodyBytes = 1 << 20

// Kind classifies an error for the HTTP layer. Services return errors wrapped
// in *Error; the status code is chosen here and nowhere else.
type Kind int

// Error kinds.
const (
	KindInternal Kind = iota
	KindBadRequest
	KindUnauthenticated
	KindForbidden
	KindNotFound
	KindConflict
	KindUnsupportedMediaType
	KindTooLarge
	KindLocked
	KindUnavailable
	KindGatewayTimeout
)

var statusOf = map[Kind]int{
	KindInternal:             http.StatusInternalServerError,
	KindBadRequest:           http.StatusBadRequest,
	KindUnauthenticated:      http.StatusUnauthorized,
	KindForbidden:            http.StatusForbidden,
	KindNotFound:             http.StatusNotFound,
	KindConflict:             http.StatusConflict,
	KindUnsupportedMediaType: http.StatusUnsupportedMediaType,
	KindTooLarge:             http.StatusRequestEntityTooLarge,
	KindLocked:               http.StatusLocked,
	KindUnavailable:          http.StatusServiceUnavailable,
	KindGatewayTimeout:       http.StatusGatewayTimeout,
}

// Error is an error with a kind and a message that is safe to show the caller.
type Error struct {
	Kind    Kind
	Message string // shown to the client; never secrets
	Err     error  // the cause, logged, not shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error of the given kind with a caller-visible message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap makes an *Error of the given kind around a cause.
func Wrap(kind Kind, err error, message string) *Error {
	return &Error{Kind: kind, Message: message, Err: err}
}

// Status returns the HTTP status for err.
func Status(err error) int {
	var e *Error
	if errors.As(err, &e) {
		if s, ok := statusOf[e.Kind]; ok {
			return s
		}
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	// Status repeats the HTTP status for clients that only keep the body.
	Status int `json:"status"`
}

// Log field keys.
const (
	KeyStatus = "status"
	KeyMethod = "method"
	KeyPath   = "path"
	KeyError  = "error"
)

// WriteError writes err as a JSON error response and logs it. Internal errors
// show the client a generic message; their cause is logged.
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status := Status(err)
	msg := http.StatusText(status)
	var e *Error
	if errors.As(err, &e) && status != http.StatusInternalServerError {
		msg = e.Message
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	logger.LogAttrs(r.Context(), level, "request failed",
		slog.Int(KeyStatus, status), slog.String(KeyMethod, r.Method),
		slog.String(KeyPath, r.URL.Path), slog.String(KeyError, err.Error()))
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="trusted-compute"`)
	}
	WriteJSON(w, status, ErrorBody{Error: msg, Status: status})
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the status is sent; a write error means the client left
}

// WriteCreated answers 201 Created with the location of the new resource
// and v, its JSON.
func WriteCreated(w http.ResponseWriter, location string, v any) {
	w.Header().Set("Location", location)
	WriteJSON(w, http.StatusCreated, v)
}

// DecodeJSON decodes a request body strictly into v: the content type must be
// application/json, unknown fields and trailing data are rejected, and the body
// is limited to maxBytes (MaxBodyBytes when 0).
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, maxBytes int64) error {
	if err := RequireContentType(r, "application/json"); err != nil {
		return err
	}
	return decodeStrict(http.MaxBytesReader(w, r.Body, limit(maxBytes)), v)
}

// ReadBody reads a request body of the given content type, limited to maxBytes.
func ReadBody(w http.ResponseWriter, r *http.Request, contentType string, maxBytes int64) ([]byte, error) {
	if err := RequireContentType(r, contentType); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit(maxBytes)))
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// RequireContentType checks the request's media type.
func RequireContentType(r *http.Request, want string) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.EqualFold(mt, want) {
		return Errorf(KindUnsupportedMediaType, "content type must be %s, got %q", want, ct)
	}
	return nil
}

func limit(n int64) int64 {
	if n <= 0 {
		return MaxBodyBytes
	}
	return n
}

func decodeStrict(body io.Reader, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(KindBadRequest, "request body must hold exactly one JSON value")
	}
	return nil
}

func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return Errorf(KindTooLarge, "request body exceeds %d bytes", tooLarge.Limit)
	}
	if errors.Is(err, io.EOF) {
		return Errorf(KindBadRequest, "request body is empty")
	}
	return Wrap(KindBadRequest, err, "malformed request body: "+err.Error())
}

// ServerTLSConfig returns the TLS settings of every verifier endpoint: TLS 1.3
// only, with the given certificate source.
func ServerTLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: getCert,
	}
}

// ClientTLSConfig returns TLS settings for a client that trusts only roots
// (the CMS root): TLS 1.3, no other trust anchors.
func ClientTLSConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}
}
