//go:build unix

package cluster

import (
	"fmt"
	"syscall"
	"time"
)

// processCPUTime is the user plus system CPU time of this process so far.
func processCPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("cluster: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
