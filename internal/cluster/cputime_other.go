//go:build !unix

package cluster

import (
	"errors"
	"time"
)

// processCPUTime is not available without getrusage: the sampler reports 0.
func processCPUTime() (time.Duration, error) {
	return 0, errors.New("cluster: process CPU time is not measured on this system")
}
