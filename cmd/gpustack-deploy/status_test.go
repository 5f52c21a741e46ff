package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gpustack-deploy/gpustack-deploy/backup"
	"github.com/gpustack-deploy/gpustack-deploy/config"
	"github.com/gpustack-deploy/gpustack-deploy/observe"
	"github.com/gpustack-deploy/gpustack-deploy/spec"
)

func TestStatusRow(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	d := config.Deployment{Name: "prod", Host: "default", ContainerName: "gpustack-prod"}
	o := &observe.Deployment{
		Container: &observe.Container{State: "running", StartedAt: now.Add(-90 * time.Minute), Health: "ok",
			Labels: map[string]string{spec.LabelVersion: "v0.6.0-cpu"}},
		Database: observe.Database{Status: observe.DBRead, Revision: "c45e397531d1"},
	}
	backups := []backup.Manifest{ // newest first, as backup.Store.List gives them
		{ID: "20261128T090000.000Z-c45e397531d1", Created: now.Add(-time.Hour), Verified: false, Reason: "safety copy"},
		{ID: "20261128T080000.000Z-e6bf9e067296", Created: now.Add(-2 * time.Hour), Verified: true},
		{ID: "20261127T080000.000Z-e6bf9e067296", Created: now.Add(-26 * time.Hour), Verified: true},
	}
	row := newStatusRow(d, o, backups, now)
	want := statusRow{Name: "prod", Role: "server", Host: "default", Container: "gpustack-prod", State: "running", Version: "v0.6.0-cpu", Health: "ok",
		StartedAt: now.Add(-90 * time.Minute), Uptime: "1h30m0s", Revision: "c45e397531d1", Database: "read",
		LastBackup: "20261128T080000.000Z-e6bf9e067296", LastBackupCreated: now.Add(-2 * time.Hour)}
	if row != want {
		t.Fatalf("row\n got %+v\nwant %+v", row, want)
	}
	var buf bytes.Buffer
	if err := writeStatus(&buf, []statusRow{row}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"VERSION", "HEALTH", "UPTIME", "REVISION", "LAST VERIFIED BACKUP", "v0.6.0-cpu", " ok ", "1h30m0s", "c45e397531d1", row.LastBackup} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("status table lacks %q:\n%s", s, buf.String())
		}
	}

	// Stopped, no verified backup: no uptime, no start time, no backup.
	o.Container.State = "exited"
	row = newStatusRow(d, o, backups[:1], now)
	b, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"started_at", "uptime", "last_backup"} {
		if strings.Contains(string(b), `"`+key) {
			t.Errorf("JSON of a stopped deployment without verified backup has %s: %s", key, b)
		}
	}
	if row := newStatusRow(d, nil, nil, now); row.State != "absent" || row.Database != "unknown" {
		t.Errorf("unobserved deployment: %+v", row)
	}
}

// plan, status and backups take --json.
func TestJSONFlags(t *testing.T) {
	sets := commandFlags(context.Background())
	for _, name := range []string{"plan", "status", "backups", "doctor"} {
		if f := sets[name].Lookup("json"); f == nil || f.Value.Type() != "bool" {
			t.Errorf("%s has no --json", name)
		}
	}
}
