package emulator

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Logger names used by the real server, kept in one place.
const (
	logStart     = "gpustack.cmd.start"
	logServer    = "gpustack.server.server"
	logAlembic   = "alembic.runtime.migration"
	logUvicorn   = "uvicorn.error"
	logEmulator  = "gpustack.emulator"
	logPrerun    = "gpustack.cmd.prerun"
	logMigrate   = "gpustack.cmd.db_migration"
	logUsage     = "gpustack.server.usage_buffer"
	timeLayout   = "2006-01-02T15:04:05-07:00"
	levelInfo    = "INFO"
	levelError   = "ERROR"
	levelCrit    = "CRITICAL"
	levelWarning = "WARNING"
)

// logger writes lines in GPUStack's format:
// 2026-11-28T06:17:24+00:00 - <logger> - <LEVEL> - <message>
type logger struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	// mask, if set, hides secrets (an external database's password).
	mask func(string) string
}

func newLogger(w io.Writer) *logger {
	return &logger{w: w, now: time.Now}
}

func (l *logger) log(name, level, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.now().UTC().Format(timeLayout)
	msg := fmt.Sprintf(format, args...)
	if l.mask != nil {
		msg = l.mask(msg)
	}
	fmt.Fprintf(l.w, "%s - %s - %s - %s\n", ts, name, level, msg)
}

// raw writes text as it is, for multi-line output such as a traceback.
func (l *logger) raw(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if l.mask != nil {
		msg = l.mask(msg)
	}
	io.WriteString(l.w, msg)
}
