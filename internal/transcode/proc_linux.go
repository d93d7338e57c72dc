package transcode

import (
	"os/exec"
	"syscall"
)

// configureCmd makes the kernel kill ffmpeg if the server dies without
// stopping it, so that no converter outlives its server.
func configureCmd(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
