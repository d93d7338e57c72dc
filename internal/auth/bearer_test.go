package auth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBearerToken(t *testing.T) {
	for _, c := range []struct {
		h, want string
		ok      bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{"  Bearer abc", "abc", true},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer    ", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"Bearerabc", "", false},
		{"Bearer\tabc", "", false},
		{"", "", false},
	} {
		got, ok := BearerToken(c.h)
		require.Equal(t, c.want, got, "%q", c.h)
		require.Equal(t, c.ok, ok, "%q", c.h)
	}
}

func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer  x.y.z ")
	f.Add("Basic abc")
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := BearerToken(h)
		if ok != (tok != "") {
			t.Fatalf("%q: ok %v with token %q", h, ok, tok)
		}
		if ok && (tok != strings.TrimSpace(tok) || !strings.Contains(h, tok)) {
			t.Fatalf("%q: token %q is not a trimmed part of the header", h, tok)
		}
	})
}
