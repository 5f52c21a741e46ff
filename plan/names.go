package plan

import "fmt"

// The JSON and saved-plan forms of the enums are stable slugs: a number
// would be opaque to readers of --json, and a slug never shifts when a
// value is added. Never rename a slug.

var actionSlugs = map[ActionKind]string{
	ActionPullImage:        "pull-image",
	ActionCreateVolume:     "create-volume",
	ActionBackupDatabase:   "backup-database",
	ActionCreateContainer:  "create-container",
	ActionReplaceContainer: "replace-container",
	ActionStartContainer:   "start-container",
	ActionMigrate:          "migrate-database",
	ActionVerify:           "verify",
	ActionRemovePrevious:   "remove-previous",
	ActionSafetyCopy:       "safety-copy",
	ActionRestoreDatabase:  "restore-database",
	ActionRemoveContainer:  "remove-container",
	ActionDeleteVolume:     "delete-volume",
	ActionCopyCache:        "copy-cache",
	ActionRemoveOldCache:   "remove-old-cache",
	ActionMigrateData:      "migrate-data",
}

var reasonSlugs = map[Reason]string{
	ReasonNone:             "",
	ReasonImageMissing:     "image-missing",
	ReasonPullAlways:       "pull-always",
	ReasonVolumeMissing:    "volume-missing",
	ReasonNewDeployment:    "new-deployment",
	ReasonVersionChanged:   "version-changed",
	ReasonConfigChanged:    "config-changed",
	ReasonContainerStopped: "container-stopped",
	ReasonImageChanges:     "image-changes",
	ReasonRevisionBehind:   "revision-behind",
	ReasonFreshDatabase:    "fresh-database",
	ReasonContainerChanges: "container-changes",
	ReasonLeftover:         "leftover",
	ReasonContainerMissing: "container-missing",
	ReasonKeptForRollback:  "kept-for-rollback",
	ReasonRestoreRequested: "restore-requested",
	ReasonBeforeOverwrite:  "before-overwrite",
	ReasonBackupVersion:    "backup-version",
	ReasonUnverified:       "unverified",
	ReasonReplaceData:      "replace-data",
	ReasonCacheInData:      "cache-in-data",
	ReasonCacheCopied:      "cache-copied",
	ReasonDestroy:          "destroy",
	ReasonDeleteRequested:  "delete-requested",
	ReasonEraChange:        "era-change",
	ReasonDataMigrated:     "data-migrated",
	ReasonExternalDatabase: "external-database",
	ReasonTokenChanged:     "token-changed",
}

func marshalSlug[K comparable](slugs map[K]string, k K, what string) ([]byte, error) {
	s, ok := slugs[k]
	if !ok {
		return nil, fmt.Errorf("no name for %s %v", what, k)
	}
	return []byte(s), nil
}

func unmarshalSlug[K comparable](slugs map[K]string, text []byte, what string) (K, error) {
	for k, s := range slugs {
		if s == string(text) {
			return k, nil
		}
	}
	var zero K
	return zero, fmt.Errorf("unknown %s %q", what, text)
}

// MarshalText implements encoding.TextMarshaler.
func (k ActionKind) MarshalText() ([]byte, error) { return marshalSlug(actionSlugs, k, "action") }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *ActionKind) UnmarshalText(b []byte) (err error) {
	*k, err = unmarshalSlug(actionSlugs, b, "action")
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (r Reason) MarshalText() ([]byte, error) { return marshalSlug(reasonSlugs, r, "reason") }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Reason) UnmarshalText(b []byte) (err error) {
	*r, err = unmarshalSlug(reasonSlugs, b, "reason")
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (c RefusalCode) MarshalText() ([]byte, error) { return marshalSlug(refusalNames, c, "refusal") }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *RefusalCode) UnmarshalText(b []byte) (err error) {
	*c, err = unmarshalSlug(refusalNames, b, "refusal")
	return err
}

// UnmarshalText accepts the methods this binary knows (and "", no method):
// a method it does not know must not pass for one it does.
func (m *BackupMethod) UnmarshalText(b []byte) error {
	switch v := BackupMethod(b); v {
	case "", MethodSQLite, MethodPGFiles, MethodPGDump, MethodVolume, MethodExternalDump:
		*m = v
		return nil
	default:
		return fmt.Errorf("unknown backup method %q", b)
	}
}
