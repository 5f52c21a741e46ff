package backup

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// PGState is the cluster state PostgreSQL records in global/pg_control
// (enum DBState in src/include/catalog/pg_control.h).
type PGState int32

// The states of pg_control; the numbers are PostgreSQL's.
const (
	PGStarting            PGState = 0
	PGShutdowned          PGState = 1
	PGShutdownedRecovery  PGState = 2
	PGShutdowning         PGState = 3
	PGInCrashRecovery     PGState = 4
	PGInArchiveRecovery   PGState = 5
	PGInProduction        PGState = 6
	pgControlStateOffset          = 16 // after system_identifier (8), pg_control_version (4), catalog_version_no (4)
	pgControlMinSize              = 24
	pgControlMaxCRCOffset         = 1024
)

func (s PGState) String() string {
	switch s {
	case PGStarting:
		return "starting up"
	case PGShutdowned:
		return "shut down"
	case PGShutdownedRecovery:
		return "shut down in recovery"
	case PGShutdowning:
		return "shutting down"
	case PGInCrashRecovery:
		return "in crash recovery"
	case PGInArchiveRecovery:
		return "in archive recovery"
	case PGInProduction:
		return "in production"
	default:
		return fmt.Sprintf("state %d", int32(s))
	}
}

// PGControl is what a file-level backup needs from global/pg_control.
type PGControl struct {
	SystemID       uint64
	ControlVersion uint32
	CatalogVersion uint32
	State          PGState
	// CRCOffset is where the CRC-32C of the bytes before it was found.
	CRCOffset int
}

// Clean reports whether the cluster was shut down cleanly, so that its
// files are consistent without WAL replay.
func (c PGControl) Clean() bool {
	return c.State == PGShutdowned || c.State == PGShutdownedRecovery
}

// ParsePGControl reads global/pg_control (little-endian, as on every
// platform GPUStack ships for). The struct's length differs between
// PostgreSQL releases, so rather than hard-coding the CRC's position per
// pg_control_version it looks for the 4-byte-aligned offset whose CRC-32C
// of everything before it is stored there: the crc field ends the struct,
// and a match by chance is a one-in-four-billion event per offset.
func ParsePGControl(b []byte) (PGControl, error) {
	if len(b) < pgControlMinSize {
		return PGControl{}, fmt.Errorf("pg_control is %d bytes, too short", len(b))
	}
	c := PGControl{
		SystemID:       binary.LittleEndian.Uint64(b[0:8]),
		ControlVersion: binary.LittleEndian.Uint32(b[8:12]),
		CatalogVersion: binary.LittleEndian.Uint32(b[12:16]),
		State:          PGState(int32(binary.LittleEndian.Uint32(b[pgControlStateOffset:]))),
	}
	if c.ControlVersion < 900 || c.ControlVersion > 9999 {
		return c, fmt.Errorf("pg_control version %d is not one PostgreSQL writes (the file is damaged or not pg_control)", c.ControlVersion)
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	limit := min(len(b)-4, pgControlMaxCRCOffset)
	var crc uint32
	prev := 0
	for off := pgControlMinSize; off <= limit; off += 4 {
		crc = crc32.Update(crc, table, b[prev:off])
		prev = off
		if crc == binary.LittleEndian.Uint32(b[off:]) {
			c.CRCOffset = off
			return c, nil
		}
	}
	return c, fmt.Errorf("pg_control fails its CRC-32C check: the file is damaged")
}
