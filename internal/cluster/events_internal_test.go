package cluster

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	tests := []struct {
		name, in string
		limit    int
		want     string
	}{
		{"a short note is kept whole", "pcr-7 differs", 1024, "pcr-7 differs"},
		{"a note of exactly the limit is kept whole", strings.Repeat("a", 8), 8, strings.Repeat("a", 8)},
		{"a long note is cut and marked", strings.Repeat("a", 10), 8, "aaaaa..."},
		{"a cut never splits a character", "aaaa\u00e9\u00e9\u00e9", 8, "aaaa..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncate(tt.in, tt.limit)
			if got != tt.want || len(got) > tt.limit || !utf8.ValidString(got) {
				t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
			}
		})
	}
}

func TestEventNote(t *testing.T) {
	tests := []struct {
		name                     string
		message, parts, reportID string
		want                     string
	}{
		{"all three are joined in order", "quote mismatch", "pcr-7, ima", "r-1", "quote mismatch; failed: pcr-7, ima; report r-1"},
		{"missing pieces are left out", "", "pcr-7", "r-1", "failed: pcr-7; report r-1"},
		{"nothing gives nothing", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EventNote(tt.message, tt.parts, tt.reportID); got != tt.want {
				t.Errorf("EventNote = %q, want %q", got, tt.want)
			}
		})
	}
}
