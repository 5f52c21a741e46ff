package config

import (
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Database schemes GPUStack accepts in --database-url (facts §2.2, §3.5).
const (
	SchemeSQLite     = "sqlite"
	SchemePostgreSQL = "postgresql"
	SchemeMySQL      = "mysql"
)

// Backup methods of the backup block, for v2's embedded PostgreSQL.
const (
	BackupPGFiles = "pg-files"
	BackupPGDump  = "pg-dump"
)

// ExternalAcknowledged is the only value of backup { external = ... }.
const ExternalAcknowledged = "acknowledged"

// Default images with the dump tools of an external database; pg_dump and
// mysqldump read servers older than themselves.
const (
	DefaultPostgresToolImage = "postgres:17"
	DefaultMySQLToolImage    = "mysql:8.4"
)

var (
	backupMethods = []string{BackupPGFiles, BackupPGDump}
	toolImageRe   = regexp.MustCompile(`^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
)

// databaseURL decodes database_url: a secret from a sensitive variable
// whose scheme the target release accepts. Nothing here may quote the
// value: it holds credentials. Diagnostics carry no evaluation context, so
// that HCL does not print a non-sensitive variable's value either.
func (c *checker) databaseURL(d *Deployment, attr *hcl.Attribute, t releaseTarget) {
	url, ok := c.sensitiveString(attr, "database_url", "holds the database's credentials")
	if !ok {
		return
	}
	r := attr.Expr.Range()
	scheme, _, found := strings.Cut(url, "://")
	if !found {
		scheme = ""
	}
	scheme = strings.ToLower(scheme)
	switch {
	case scheme != SchemeSQLite && scheme != SchemePostgreSQL && scheme != SchemeMySQL:
		c.errorAt(r, "Invalid database URL",
			"database_url must start with postgresql:// or mysql:// (v0.x also accepts sqlite://); the value of the variable does not. "+
				"Write for example postgresql://user:password@db.example:5432/gpustack in the variable.")
		return
	case scheme == SchemeSQLite && !t.sqlite():
		c.errorAt(r, "Database not supported by this release",
			"GPUStack v2 dropped SQLite: %s accepts postgresql:// and mysql:// only. Give the variable a PostgreSQL or MySQL URL, or remove database_url to use the embedded PostgreSQL.", t.name())
		return
	case scheme == SchemePostgreSQL && t.before(v040):
		c.errorAt(r, "Database not supported by this release",
			"PostgreSQL support came in GPUStack v0.4.0; %s only runs reliably on SQLite. Remove database_url, or write version = %q or later.", t.name(), "v0.4.0")
		return
	case scheme == SchemeMySQL && t.before(v061):
		c.errorAt(r, "Database not supported by this release",
			"MySQL support came in GPUStack v0.6.1; %s does not accept mysql://. Remove database_url, or write version = %q or later.", t.name(), "v0.6.1")
		return
	}
	d.DatabaseURL = Value{S: url, Sensitive: true}
	d.DatabaseScheme = scheme
}

// backupDatabase decodes what the backup block says about the database:
// the method for the embedded PostgreSQL, and for an external database the
// dump tool's image or the acknowledgement that no backup is taken.
func (c *checker) backupDatabase(p *BackupPolicy, b *backupBlock, url *hcl.Attribute, d *Deployment, t releaseTarget) {
	external := d.DatabaseURL.S != ""
	if !external && t.known && t.era != "" && !t.sqlite() {
		p.Method = BackupPGFiles
	}
	if b != nil {
		c.backupBlockDatabase(p, b, d, t)
	}
	if external && d.DatabaseScheme == SchemeSQLite && !p.ExternalAcknowledged {
		c.errorAt(url.Expr.Range(), "SQLite database outside the data volume",
			"gpustack-deploy backs up database.db in the data volume, or dumps a PostgreSQL or MySQL server; it cannot back up a SQLite file named by database_url. "+
				`Remove database_url to use database.db in the data volume, or write backup { external = "acknowledged" } and back the file up yourself.`)
	}
	c.defaultToolImage(p, d)
}

func (c *checker) backupBlockDatabase(p *BackupPolicy, b *backupBlock, d *Deployment, t releaseTarget) {
	external := d.DatabaseURL.S != ""
	if s, ok := c.enum(b.Method, "method", backupMethods); ok {
		switch {
		case external:
			c.eval.errorf(b.Method, "Backup method without an embedded database",
				"method chooses how v2's embedded PostgreSQL is backed up; with database_url the backup is a dump of the external database, taken with tool_image. Remove method.")
		case t.sqlite():
			c.eval.errorf(b.Method, "Backup method not for this release",
				"%s keeps its data in SQLite, which is always backed up as one verified SQLite file. Remove method; it applies to v2 releases.", t.name())
		default:
			p.Method = s
		}
	}
	if _, ok := c.enum(b.External, "external", []string{ExternalAcknowledged}); ok {
		if external {
			p.ExternalAcknowledged = true
		} else {
			c.eval.errorf(b.External, "No external database",
				`external = "acknowledged" says that the external database named by database_url is backed up by its own means; this deployment has no database_url. Remove external.`)
		}
	}
	if s, ok := c.eval.str(b.ToolImage, "tool_image", `an image, for example tool_image = "postgres:17"`); ok {
		switch {
		case !external:
			c.eval.errorf(b.ToolImage, "Dump tool without an external database",
				"tool_image is the image whose pg_dump or mysqldump backs up the external database named by database_url; this deployment has none. Remove tool_image.")
		case p.ExternalAcknowledged:
			c.eval.errorf(b.ToolImage, "Dump tool never used",
				`With external = "acknowledged" gpustack-deploy takes no backup of the external database, so tool_image is never used. Remove one of them.`)
		case !toolImageRe.MatchString(s):
			c.eval.errorf(b.ToolImage, "Invalid tool image",
				`%q is not an image reference. Write a repository with a tag, for example tool_image = %q or %q.`, s, DefaultPostgresToolImage, DefaultMySQLToolImage)
		default:
			p.ToolImage = s
		}
	}
}

func (c *checker) defaultToolImage(p *BackupPolicy, d *Deployment) {
	if p.ToolImage != "" || p.ExternalAcknowledged || d.DatabaseURL.S == "" {
		return
	}
	switch d.DatabaseScheme {
	case SchemePostgreSQL:
		p.ToolImage = DefaultPostgresToolImage
	case SchemeMySQL:
		p.ToolImage = DefaultMySQLToolImage
	}
}
