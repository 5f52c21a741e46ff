package observe

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/config"
)

// TestExternalScriptsParse: the scripts run in one-off containers are
// valid POSIX shell.
func TestExternalScriptsParse(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for name, script := range map[string]string{"psql": externalQueryScript, "mysql": mysqlQueryScript} {
		if out, err := exec.Command(sh, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("%s script: %v\n%s", name, err, out)
		}
	}
	if !strings.Contains(mysqlQueryScript, "FROM \\`$t\\`") {
		t.Errorf("the row count does not quote the table name:\n%s", mysqlQueryScript)
	}
}

func TestExternalEnv(t *testing.T) {
	d := config.Deployment{DatabaseScheme: config.SchemeMySQL, DatabaseURL: config.Value{S: "mysql://gs:s3cr%40t@db.example/gpustack?charset=utf8mb4", Sensitive: true}}
	env, err := ExternalEnv(d)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"GSD_DB_HOST=db.example", "GSD_DB_PORT=3306", "GSD_DB_USER=gs", "GSD_DB_NAME=gpustack", "MYSQL_PWD=s3cr@t"}
	if strings.Join(env, " ") != strings.Join(want, " ") {
		t.Errorf("env %v, want %v", env, want)
	}
	d.DatabaseURL.S = "mysql://gs:pw@db.example:3307/"
	if _, err := ExternalEnv(d); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("a URL without database: %v", err)
	}
	d = config.Deployment{DatabaseScheme: config.SchemePostgreSQL, DatabaseURL: config.Value{S: "postgresql://u:p@h/db"}}
	if env, _ := ExternalEnv(d); len(env) != 1 || env[0] != ExternalURLEnv+"=postgresql://u:p@h/db" {
		t.Errorf("postgres env %v", env)
	}
}
