package emulator

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Environment variables baked into images or set on containers.
const (
	EnvRelease       = "GPUSTACK_EMULATOR_RELEASE"
	EnvGitCommit     = "GPUSTACK_EMULATOR_GIT_COMMIT"
	EnvStartupDelay  = "GPUSTACK_EMULATOR_STARTUP_DELAY"
	EnvDevRevision   = "GPUSTACK_EMULATOR_DEV_REVISION"
	EnvFailMigration = "GPUSTACK_EMULATOR_FAIL_MIGRATION"
	EnvHealth        = "GPUSTACK_EMULATOR_HEALTH"
	EnvExitAfter     = "GPUSTACK_EMULATOR_EXIT_AFTER"
	// v2 only.
	EnvFailDataMigration = "GPUSTACK_EMULATOR_FAIL_DATA_MIGRATION"
	EnvV2Gap5774         = "GPUSTACK_EMULATOR_V2_GAP_5774"
)

// DefaultGitCommit is reported when GPUSTACK_EMULATOR_GIT_COMMIT is unset.
const DefaultGitCommit = "e3b0c44"

// DevRelease names the development image (`main`, `main-cpu`).
const DevRelease = "main"

// Release is the GPUStack release an emulator image pretends to be.
type Release struct {
	Name string // tag without variant: "0.3.0", "v0.5.1", "v0.6.0rc1", "main"
	Dev  bool

	major, minor, patch, rc int
}

var releasePattern = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:rc(\d+))?$`)

// ParseRelease accepts SQLite-era release names (0.1.0 … v0.7.1, rc tags
// included), the v2 releases v2.0.0 … v2.2.3 (rc tags included) and "main"
// for the 2025-03 development image.
func ParseRelease(s string) (Release, error) {
	if s == DevRelease {
		// The emulated main image sits between v0.5.1 and v0.6.0rc1; its
		// era-dependent behaviour (logging, pragmas, flags) is that of 0.5.x.
		return Release{Name: s, Dev: true, major: 0, minor: 5, patch: 99}, nil
	}
	m := releasePattern.FindStringSubmatch(s)
	if m == nil {
		return Release{}, fmt.Errorf("release %q: not a GPUStack release name", s)
	}
	n := make([]int, 4)
	for i, part := range m[1:] {
		if part != "" {
			n[i], _ = strconv.Atoi(part)
		}
	}
	r := Release{Name: s, major: n[0], minor: n[1], patch: n[2], rc: n[3]}
	if r.major == 2 {
		if !strings.HasPrefix(s, "v") || r.atLeast(2, 2, 4) {
			return Release{}, fmt.Errorf("release %q: not a v2 release the emulator knows (v2.0.0 … v2.2.3)", s)
		}
		return r, nil
	}
	if r.major != 0 || r.atLeast(0, 7, 2) {
		return Release{}, fmt.Errorf("release %q: not in the SQLite era (0.1.0 … v0.7.1) nor v2 (v2.0.0 … v2.2.3)", s)
	}
	if r.patch == 0 && r.minor == 1 && r.rc == 1 {
		return Release{}, fmt.Errorf("release %q: head a16a55af6f75 is not emulated", s)
	}
	return r, nil
}

// atLeast compares the release's X.Y.Z, ignoring any rc suffix: an rc of a
// line behaves like its final release.
func (r Release) atLeast(major, minor, patch int) bool {
	if r.major != major {
		return r.major > major
	}
	if r.minor != minor {
		return r.minor > minor
	}
	return r.patch >= patch
}

// Version is what `gpustack version` and /version report.
func (r Release) Version() string {
	if r.Dev {
		return "v0.0.0"
	}
	return r.Name
}

// V2 reports a release of the PostgreSQL era (v2.0.0 on).
func (r Release) V2() bool { return !r.Dev && r.major >= 2 }

// Head is the Alembic head the release ships (facts §3.3). For the dev
// image it is the id it stamps, c45e397531d1.
func (r Release) Head() string {
	if r.V2() {
		return r.v2Head()
	}
	switch {
	case r.Dev:
		return "c45e397531d1"
	case !r.atLeast(0, 1, 1):
		return "1dd9fa5b38ff"
	case !r.atLeast(0, 2, 0):
		return "8277680cfcb7"
	case !r.atLeast(0, 3, 0):
		return "6dcb3a50da19"
	case !r.atLeast(0, 3, 1):
		return "f29521415cbd"
	case !r.atLeast(0, 4, 0):
		return "0f7dde8b3c4b"
	case !r.atLeast(0, 5, 0):
		return "004c73a5c09e"
	case !r.atLeast(0, 6, 0):
		return "e6bf9e067296"
	case !r.atLeast(0, 7, 0):
		return "c45e397531d1"
	case !r.atLeast(0, 7, 1):
		return "cbbc03c88985"
	default:
		return "d19176de3b74"
	}
}

// hasCacheDirFlag: --cache-dir first shipped in 0.3.2rc1.
func (r Release) hasCacheDirFlag() bool { return r.atLeast(0, 3, 2) }

// usesWAL: the SQLite tuning pragmas arrived in v0.7.0.
func (r Release) usesWAL() bool { return r.atLeast(0, 7, 0) }

// logsVersionAtStart: the "GPUStack version" start-up line is v0.7.0+.
func (r Release) logsVersionAtStart() bool { return r.atLeast(0, 7, 0) }

// failureEra selects how a failed start is logged (facts §3.1).
type failureEra int

const (
	eraCritical  failureEra = iota // 0.1.x–0.3.x: CRITICAL - <raw error>
	eraError                       // v0.4.0–v0.6.x: ERROR - Error running server: <raw error>
	eraWrapped                     // v0.7.0–v2.1.0: ... Database migration failed: <cause>, exit 0
	eraTraceback                   // v2.1.1+: traceback with RuntimeError: Database migration failed, exit 1
)

func (r Release) failureEra() failureEra {
	switch {
	case r.atLeast(2, 1, 1):
		return eraTraceback
	case r.V2():
		return eraWrapped
	case r.atLeast(0, 7, 0):
		return eraWrapped
	case r.atLeast(0, 4, 0):
		return eraError
	default:
		return eraCritical
	}
}

// lastPatch maps minor-version tags (v0.5, v0.7) to the release they track.
var lastPatch = map[string]string{
	"v0.4": "v0.4.1", "v0.5": "v0.5.1", "v0.6": "v0.6.2", "v0.7": "v0.7.1",
	"v2.0": "v2.0.3", "v2.1": "v2.1.2", "v2.2": "v2.2.3",
}

// ReleaseForTag maps an image tag to the release it carries: "v0.5.1-cpu" →
// "v0.5.1", "0.3.0" → "0.3.0", "main-cpu" → "main", "v0.7-npu" → "v0.7.1".
// Moving tags with no fixed release ("latest") are refused.
func ReleaseForTag(tag string) (Release, error) {
	name, variant, hasVariant := strings.Cut(tag, "-")
	if full, ok := lastPatch[name]; ok {
		name = full
	}
	if name == "latest" {
		return Release{}, fmt.Errorf("tag %q: a moving tag names no release", tag)
	}
	rel, err := ParseRelease(name)
	if err != nil {
		return Release{}, err
	}
	if rel.V2() && hasVariant {
		return Release{}, fmt.Errorf("tag %q: v2 images are unified, there is no %q variant", tag, variant)
	}
	return rel, nil
}

// identity is the release and commit an emulator process reports.
type identity struct {
	release Release
	commit  string // 7 hex
}

func identityFromEnv(getenv func(string) string) (identity, error) {
	name := getenv(EnvRelease)
	if name == "" {
		return identity{}, fmt.Errorf("%s is not set", EnvRelease)
	}
	rel, err := ParseRelease(name)
	if err != nil {
		return identity{}, fmt.Errorf("%s: %w", EnvRelease, err)
	}
	commit := getenv(EnvGitCommit)
	if commit == "" {
		commit = DefaultGitCommit
	}
	if len(commit) > 7 {
		commit = commit[:7]
	}
	return identity{release: rel, commit: commit}, nil
}

// v2Head is the Alembic head of a v2 release (facts §3.3).
func (r Release) v2Head() string {
	switch {
	case !r.atLeast(2, 0, 2):
		return "e30134bd18dc"
	case !r.atLeast(2, 1, 0):
		return "2aed534bd7b2"
	case !r.atLeast(2, 1, 1):
		return "53667f33f000"
	case !r.atLeast(2, 2, 0):
		return "8ad0f94c92e8"
	case r.minor == 2 && r.patch == 0 && r.rc == 1:
		return "61929acb0676"
	case !r.atLeast(2, 2, 2):
		return "b2c3d4e5f6a7"
	default:
		return "c4d7e8f9a0b1"
	}
}

// writesBootstrapVersion: the initial revision writes bootstrap_version on
// fresh installs from v2.0.1 on.
func (r Release) writesBootstrapVersion() bool { return r.atLeast(2, 0, 1) }

// dataMigrationFlag is the env var that turns on the SQLite → PostgreSQL
// migration: GPUSTACK_MIGRATION_DATA_DIR in v2.0.0, GPUSTACK_DATA_MIGRATION
// from v2.0.1.
func (r Release) dataMigrationFlag() string {
	if r.atLeast(2, 0, 1) {
		return "GPUSTACK_DATA_MIGRATION"
	}
	return "GPUSTACK_MIGRATION_DATA_DIR"
}
