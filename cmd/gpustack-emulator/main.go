// Command gpustack-emulator is the GPUStack emulator used by the end-to-end
// tests; images install it as /usr/local/bin/gpustack. See package emulator.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/gpustack-deploy/gpustack-deploy/emulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := emulator.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
