package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"testing"
)

func TestQualifyingDataBindsTheHostFacts(t *testing.T) {
	nonce := bytes.Repeat([]byte{0x42}, NonceSize)
	facts := &HostInfo{Version: Version, HostName: "edge-1", DiskEncryption: DiskEncryption{Enabled: true,
		Volumes: []CryptVolume{{Name: "root", UUID: "3f2d0c1b-9a8e-4d7c-6b5a-49382716f0e1"}}}}
	base := QualifyingData(nonce, facts)
	if len(base) != sha256.Size {
		t.Fatalf("qualifying data of %d bytes, want %d", len(base), sha256.Size)
	}
	t.Run("it is SHA-256(nonce || SHA-256(canonical facts))", func(t *testing.T) {
		canon, _ := json.Marshal(facts)
		d := sha256.Sum256(canon)
		want := sha256.Sum256(append(bytes.Clone(nonce), d[:]...))
		if !bytes.Equal(base, want[:]) {
			t.Fatalf("got %x, want %x", base, want)
		}
	})
	changes := []struct {
		name   string
		change func(h *HostInfo)
	}{
		{"another host name", func(h *HostInfo) { h.HostName = "edge-2" }},
		{"encryption claimed off", func(h *HostInfo) { h.DiskEncryption.Enabled = false }},
		{"another root volume", func(h *HostInfo) { h.DiskEncryption.Volumes[0].Name = "var" }},
	}
	for _, c := range changes {
		t.Run(c.name+" changes it", func(t *testing.T) {
			other := *facts
			other.DiskEncryption.Volumes = append([]CryptVolume(nil), facts.DiskEncryption.Volumes...)
			c.change(&other)
			if bytes.Equal(QualifyingData(nonce, &other), base) {
				t.Fatal("different facts give the same qualifying data")
			}
		})
	}
	t.Run("another nonce changes it", func(t *testing.T) {
		if bytes.Equal(QualifyingData(bytes.Repeat([]byte{1}, NonceSize), facts), base) {
			t.Fatal("different nonces give the same qualifying data")
		}
	})
	t.Run("no facts differ from empty facts", func(t *testing.T) {
		if bytes.Equal(QualifyingData(nonce, nil), QualifyingData(nonce, &HostInfo{})) {
			t.Fatal("nil facts and empty facts give the same qualifying data")
		}
	})
	t.Run("facts that went over the wire hash as they did before", func(t *testing.T) {
		sent := &HostInfo{Version: Version, HostName: "bad\xffutf8", OSName: "ok \u00e9"}
		if !bytes.Equal(QualifyingData(nonce, sent), QualifyingData(nonce, overTheWire(t, sent))) {
			t.Fatal("the verifier's decoded facts hash differently from the agent's")
		}
	})
}
