package fleet

import (
	"fmt"
	"strings"
	"testing"
)

func rowsOf(statuses ...string) []NodeRow {
	out := make([]NodeRow, len(statuses))
	for i, s := range statuses {
		out[i] = NodeRow{Number: i + 1, Node: fmt.Sprintf("edge-%d", i+1), Status: s, Cordoned: s != "Verified"}
	}
	return out
}

func TestALargeFleetIsSummarisedAndPaged(t *testing.T) {
	big := make([]string, 10000)
	for i := range big {
		big[i] = "Verified"
	}
	big[4999], big[9999] = "Attestation Failed", "Secure Boot Disabled"
	rows := rowsOf(big...)

	t.Run("the summary counts each status in a sentence", func(t *testing.T) {
		want := "10000 nodes: 9998 Verified, 1 Attestation Failed, 1 Secure Boot Disabled (2 cordoned)"
		if got := summaryLine(rows); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("the terminal lists the nodes that need attention first", func(t *testing.T) {
		shown := attentionFirst(rows, viewRows)
		if len(shown) != viewRows || shown[0].Node != "edge-5000" || shown[1].Node != "edge-10000" || shown[2].Node != "edge-1" {
			t.Errorf("shown %d rows starting %v", len(shown), shown[:3])
		}
	})
	tests := []struct {
		name, status           string
		page                   int
		first                  string
		n, wantPage, wantPages int
	}{
		{"the first page has the first hundred nodes", "", 1, "edge-1", 100, 1, 100},
		{"the last page has the last hundred", "", 100, "edge-9901", 100, 100, 100},
		{"a page past the end is the last page", "", 500, "edge-9901", 100, 100, 100},
		{"a page before the start is the first", "", -3, "edge-1", 100, 1, 100},
		{"a status filter keeps its nodes only", "Attestation Failed", 1, "edge-5000", 1, 1, 1},
		{"a status no node has is an empty page", "Unknown", 1, "", 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, page, pages := paged(rows, tt.status, tt.page)
			first := ""
			if len(got) > 0 {
				first = got[0].Node
			}
			if len(got) != tt.n || first != tt.first || page != tt.wantPage || pages != tt.wantPages {
				t.Errorf("%d rows from %q, page %d of %d; want %d from %q, page %d of %d", len(got), first, page, pages, tt.n, tt.first, tt.wantPage, tt.wantPages)
			}
		})
	}
	if strings.Contains(summaryLine(nil), "Verified") {
		t.Error("an empty fleet's summary counts a status")
	}
}
