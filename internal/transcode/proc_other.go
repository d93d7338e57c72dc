//go:build !linux

package transcode

import "os/exec"

// configureCmd has nothing to set outside Linux.
func configureCmd(*exec.Cmd) {}
