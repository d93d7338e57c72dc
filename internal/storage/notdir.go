package storage

import (
	"errors"
	"syscall"
)

// isNotDir reports a path that runs through a regular file ("a/b" when "a" is a file).
func isNotDir(err error) bool {
	return errors.Is(err, syscall.ENOTDIR)
}
