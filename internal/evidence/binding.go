package evidence

import (
	"crypto/sha256"
	"encoding/json"
)

// HostFactsDigest is the SHA-256 of the canonical bytes of the host facts:
// their JSON encoding after one JSON round trip, so that the agent, which
// hashes the facts it sends, and the verifier, which hashes the facts it
// decoded, hash the same bytes (a round trip turns invalid UTF-8 into
// U+FFFD once and for all). Nil facts hash as the JSON null.
func HostFactsDigest(facts *HostInfo) [sha256.Size]byte {
	return sha256.Sum256(canonicalHostFacts(facts))
}

func canonicalHostFacts(facts *HostInfo) []byte {
	if facts == nil {
		return []byte("null")
	}
	first, err := json.Marshal(facts)
	if err != nil {
		// A HostInfo holds only strings, bools and slices of them: it
		// always encodes. Should it not, no facts are bound.
		return []byte("null")
	}
	var again HostInfo
	if err := json.Unmarshal(first, &again); err != nil {
		return []byte("null")
	}
	out, err := json.Marshal(&again)
	if err != nil {
		return []byte("null")
	}
	return out
}

// QualifyingData is what the agent passes to TPM2_Quote as qualifyingData
// and the verifier expects as the quote's extraData: SHA-256(nonce ||
// HostFactsDigest(facts)). It binds the host facts sent with a quote to
// that quote, so facts taken from another answer, or changed on the way,
// fail the quote.
func QualifyingData(nonce []byte, facts *HostInfo) []byte {
	digest := HostFactsDigest(facts)
	h := sha256.New()
	h.Write(nonce)
	h.Write(digest[:])
	return h.Sum(nil)
}
