package apps

import (
	"context"
	"fmt"
	"testing"

	"github.com/quasipaa/quasipaa/internal/cluster"
	"github.com/quasipaa/quasipaa/internal/config"
)

// BenchmarkFor measures the lookup every publish and play does, with 100
// entries and the match at the end of the list.
func BenchmarkFor(b *testing.B) {
	seed := make([]config.App, 100)
	for i := range seed {
		seed[i] = app(fmt.Sprintf("app%d/*", i))
	}
	s, err := NewStore(context.Background(), cluster.NewMemory(), seed, quiet())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := s.For("app99/cam1"); !ok {
				b.Fatal("no match")
			}
		}
	})
}
