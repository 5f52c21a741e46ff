// Command launch runs one command and reports its wall time and peak
// resident memory, for the benchmarks in package bench:
//
//	launch PROGRAM [ARG …]   (result on file descriptor 3)
//
// It exists because Linux carries a process's peak RSS across exec: a
// child forked or vforked by a large parent starts with the parent's
// high-water mark in ru_maxrss. Started from this small process instead,
// the command's ru_maxrss is its own, or at most this process's peak, which
// is reported too so that the bench can say so.
//
// Standard input, output and error are the command's. Line on fd 3:
// "<wall ns> <child maxrss KiB> <exit code> <own VmHWM KiB> <child user+sys CPU µs>".
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: launch PROGRAM [ARG …] 3>result")
		os.Exit(2)
	}
	result := os.NewFile(3, "result")
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// If the bench kills this process (interrupt), the command dies too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	own := hwm()
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "launch:", err)
		os.Exit(127)
	}
	var maxrss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxrss = ru.Maxrss // KiB on Linux
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if _, err := fmt.Fprintf(result, "%d %d %d %d %d\n", wall.Nanoseconds(), maxrss, cmd.ProcessState.ExitCode(), own, cpu.Microseconds()); err != nil {
		fmt.Fprintln(os.Stderr, "launch: write result:", err)
		os.Exit(127)
	}
}

// hwm is this process's VmHWM in KiB (0 if unknown).
func hwm() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
