package storage_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quasipaa/quasipaa/internal/storage"
	"github.com/quasipaa/quasipaa/internal/storage/storagetest"
)

func TestFSContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.NewFS(t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestS3Contract(t *testing.T) {
	gw := storagetest.StartVersityGW(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return gw.NewStore(t) })
}
