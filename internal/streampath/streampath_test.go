package streampath

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	for _, ok := range []string{"live/cam1", "a/b/c", "live/cam-1_x.y~z"} {
		require.NoError(t, Validate(ok), ok)
	}
	for _, bad := range []string{"", "live/", "/cam", "live/../etc", "live/./x", "live/a b", "live/%2e%2e", "live/a\x00", "live/ü", string(make([]byte, 300))} {
		require.ErrorIs(t, Validate(bad), ErrInvalid, bad)
	}
	p, err := Join("live", "cam1")
	require.NoError(t, err)
	require.Equal(t, "live/cam1", p)
}
