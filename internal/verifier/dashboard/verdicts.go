package dashboard

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"trustedcompute.io/tc/internal/verifier/store"
)

// maxVerdicts bounds the stored rows whose signature check verdicts keeps:
// the latest report of each node of a large fleet and the timelines
// looked at; when full it starts again.
const maxVerdicts = 1 << 17

// verdicts remembers, for stored report rows, whether the row says what its
// signed form says (Dashboard.signature): a row is trusted on the fleet and
// node pages only then, since whoever writes the database can change the
// columns and the JSON beside the signed form but cannot sign. An entry is
// keyed by the SHA-256 of everything the check read of the row, so a row
// changed afterwards is checked again. It is safe for concurrent use.
type verdicts struct {
	mu sync.Mutex
	ok map[[sha256.Size]byte]bool
}

// rowKey is the digest of what the signature check reads of sr.
func rowKey(sr store.Report) [sha256.Size]byte {
	h := sha256.New()
	for _, f := range [][]byte{[]byte(sr.ID), []byte(sr.HostID), []byte(sr.JWS), sr.JSON} {
		// Length-prefixed, so that no two rows hash alike by moving bytes.
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(f))))
		h.Write(f)
	}
	var b []byte
	if sr.Trusted {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(sr.CreatedAt.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(sr.ExpiresAt.UnixMicro()))
	h.Write(b)
	return [sha256.Size]byte(h.Sum(nil))
}

// signedTrusted tells whether the stored row sr is trusted as its signed
// form says: its verdict column is trusted and its signature, checked as
// the report page checks it, is valid for that very row.
func (d *Dashboard) signedTrusted(sr store.Report) bool {
	if !sr.Trusted {
		return false
	}
	key := rowKey(sr)
	d.verdicts.mu.Lock()
	ok, known := d.verdicts.ok[key]
	d.verdicts.mu.Unlock()
	if !known {
		sig, _ := d.signature(sr)
		ok = sig.OK
		d.verdicts.mu.Lock()
		if d.verdicts.ok == nil || len(d.verdicts.ok) >= maxVerdicts {
			d.verdicts.ok = map[[sha256.Size]byte]bool{}
		}
		d.verdicts.ok[key] = ok
		d.verdicts.mu.Unlock()
	}
	return ok
}
