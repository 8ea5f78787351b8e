// Package signals turns SIGINT and SIGTERM into a cancelled context: the first signal asks the
// program to shut down gracefully; a second one exits at once, for when graceful is too slow.
package signals

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

var onlyOneSignalHandler = make(chan struct{})

// SetupSignalHandler returns a context that is cancelled on the first SIGINT or SIGTERM.
// On the second, the process exits with status 1. Call it once per process.
func SetupSignalHandler() context.Context {
	close(onlyOneSignalHandler) // panics when called twice

	ctx, cancel := context.WithCancel(context.Background())
	c := make(chan os.Signal, 2)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-c
		cancel()
		<-c
		os.Exit(1)
	}()
	return ctx
}
