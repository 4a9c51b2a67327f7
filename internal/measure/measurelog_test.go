package measure

import (
	"errors"
	"testing"
)

func TestMeasureLog(t *testing.T) {
	record := "\x1e{\"pcr\":15,\"digests\":[{\"hashAlg\":\"sha256\",\"digest\":\"00\"}],\"content_type\":\"systemd\"}\n"
	tests := []struct {
		name    string
		files   map[string]string
		want    string
		wantErr error
	}{
		{"the log is returned as it is on disk", map[string]string{measureLogPath: record}, record, nil},
		{"a node without systemd measurements has no log", map[string]string{}, "", ErrNoMeasureLog},
		{"an empty log is no log", map[string]string{measureLogPath: ""}, "", ErrNoMeasureLog},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := New(writeTree(t, tt.files)).MeasureLog()
			if !errors.Is(err, tt.wantErr) || string(got) != tt.want {
				t.Fatalf("MeasureLog() = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	t.Run("a log over the size limit is refused", func(t *testing.T) {
		_, err := New(writeTree(t, map[string]string{measureLogPath: record + record}), WithMaxLogSize(int64(len(record)))).MeasureLog()
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want %v", err, ErrTooLarge)
		}
	})
}
