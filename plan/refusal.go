package plan

import "fmt"

// RefusalCode names why a plan cannot be applied. Values are persisted:
// never renumber.
type RefusalCode int

const (
	RefuseDevTag              RefusalCode = 1
	RefusePrereleaseTag       RefusalCode = 2
	RefuseFloatingTag         RefusalCode = 3
	RefuseDowngrade           RefusalCode = 4
	RefuseDatabaseAhead       RefusalCode = 5
	RefuseDevRevision         RefusalCode = 6
	RefuseUnknownRevision     RefusalCode = 7
	RefuseProbeMismatch       RefusalCode = 8
	RefuseUnreadableDatabase  RefusalCode = 9
	RefuseUnmanagedContainer  RefusalCode = 10
	RefuseImageUnavailable    RefusalCode = 11
	RefuseEraChange           RefusalCode = 12
	RefuseUnsupportedDatabase RefusalCode = 13
	RefuseUnstampedDatabase   RefusalCode = 14
	RefusePartialMigration    RefusalCode = 15
	RefuseReplaceUnsupported  RefusalCode = 16
	RefuseCacheNotSeparate    RefusalCode = 17
	RefuseCannotMeasure       RefusalCode = 18
	// RefuseDataMigrationBlocked: the v0.x → v2 data migration cannot be
	// planned safely from this database or to this target.
	RefuseDataMigrationBlocked RefusalCode = 19
	// RefuseFailedDataMigration: the data volume shows an earlier v0.x → v2
	// attempt that did not finish; v2 would never retry it (#3575).
	RefuseFailedDataMigration RefusalCode = 20
)

var refusalNames = map[RefusalCode]string{
	RefuseDevTag:               "dev-tag",
	RefusePrereleaseTag:        "prerelease-tag",
	RefuseFloatingTag:          "floating-tag",
	RefuseDowngrade:            "downgrade",
	RefuseDatabaseAhead:        "database-ahead",
	RefuseDevRevision:          "dev-revision",
	RefuseUnknownRevision:      "unknown-revision",
	RefuseProbeMismatch:        "probe-mismatch",
	RefuseUnreadableDatabase:   "unreadable-database",
	RefuseUnmanagedContainer:   "unmanaged-container",
	RefuseImageUnavailable:     "image-unavailable",
	RefuseEraChange:            "era-change",
	RefuseUnsupportedDatabase:  "unsupported-database",
	RefuseUnstampedDatabase:    "unstamped-database",
	RefusePartialMigration:     "partial-migration",
	RefuseReplaceUnsupported:   "replace-unsupported",
	RefuseCacheNotSeparate:     "cache-not-separate",
	RefuseCannotMeasure:        "cannot-measure",
	RefuseDataMigrationBlocked: "data-migration-blocked",
	RefuseFailedDataMigration:  "failed-data-migration",
}

func (c RefusalCode) String() string {
	if s, ok := refusalNames[c]; ok {
		return s
	}
	return fmt.Sprintf("refusal(%d)", int(c))
}

// Refusal is a reason the plan must not be applied, with what to do instead.
type Refusal struct {
	Code    RefusalCode `json:"code"`
	Summary string      `json:"summary"`
	Detail  string      `json:"detail"`
	Remedy  string      `json:"remedy"`
	// Source is the file position the refusal points at ("gpustack.hcl:3,20").
	Source string `json:"source,omitempty"`
}
