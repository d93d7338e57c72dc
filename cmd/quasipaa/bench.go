package main

import (
	"context"
	"errors"
	"io"
)

// runBench runs the load generator (placeholder until the bench command lands).
func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	return errors.New("bench: not implemented yet")
}
