package apps

import (
	"encoding/json"
	"errors"
	"testing"
)

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecode feeds arbitrary bodies to the API's app parser: it must return
// an app that re-encodes to itself, or an ErrInvalid error, never panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"match":"live/*","record":true,"record_segment":"4s"}`))
	f.Add([]byte(`{"match":"a","nope":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := DecodeBytes(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		again, err := DecodeBytes(mustJSON(t, ToJSON(a)))
		if err != nil || again != a {
			t.Fatalf("round trip: %+v -> %+v, %v", a, again, err)
		}
	})
}
