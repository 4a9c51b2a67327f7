package store

import (
	"reflect"
	"testing"
)

func TestAWhereClauseNumbersItsPlaceholdersInOrder(t *testing.T) {
	tests := []struct {
		name     string
		build    func(w *whereClause)
		wantSQL  string
		wantArgs []any
	}{
		{"no condition makes no clause", func(*whereClause) {}, "", nil},
		{"one condition", func(w *whereClause) { w.add("a = $%d", "x") }, " WHERE a = $1", []any{"x"}},
		{
			"conditions and an IN list are ANDed with numbers in order",
			func(w *whereClause) {
				w.add("a = $%d", "x")
				w.where = append(w.where, "b IN ("+w.param(1)+", "+w.param(2)+")")
				w.add("c <= $%d", int64(7))
			},
			" WHERE a = $1 AND b IN ($2, $3) AND c <= $4", []any{"x", 1, 2, int64(7)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w whereClause
			tt.build(&w)
			if got := w.sql(); got != tt.wantSQL {
				t.Errorf("sql() = %q, want %q", got, tt.wantSQL)
			}
			if !reflect.DeepEqual(w.args, tt.wantArgs) {
				t.Errorf("args = %v, want %v", w.args, tt.wantArgs)
			}
		})
	}
}
