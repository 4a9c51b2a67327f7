package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriteCreatedNamesTheNewResource(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteCreated(rec, "/hvs/v2/secrets/s1", map[string]string{"id": "s1"})
	if rec.Code != http.StatusCreated {
		t.Errorf("status %d, want 201", rec.Code)
	}
	if loc := rec.Header().Get("Location"); loc != "/hvs/v2/secrets/s1" {
		t.Errorf("Location = %q, want /hvs/v2/secrets/s1", loc)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if body := rec.Body.String(); body != "{\n  \"id\": \"s1\"\n}\n" {
		t.Errorf("body %q, want the JSON of the resource", body)
	}
}
