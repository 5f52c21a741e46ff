package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// An external MySQL (facts §2.2, §3.5): mysql://user:password@host:port/db
// in --database-url or GPUSTACK_DATABASE_URL. GPUStack rewrites the scheme
// to mysql+pymysql://; the emulator speaks the protocol with
// go-sql-driver/mysql and renders errors as pymysql's. MySQL has no
// transactional DDL: every DDL statement commits, so a failed run keeps
// what it applied and the stamp of the last revision that finished (#3202).

func init() {
	// The driver logs broken connections while the server is still
	// starting; the start-up wait reports the failure itself.
	_ = mysql.SetLogger(log.New(discard{}, "", 0))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// mysqlDSN turns a mysql:// URL into the driver's DSN; it returns host:port
// for messages too.
func mysqlDSN(u *url.URL) (dsn, hostPort string) {
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "3306"
	}
	cfg.Net = "tcp"
	cfg.Addr = net.JoinHostPort(host, port)
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime = true
	cfg.Timeout = 5 * time.Second
	cfg.Params = map[string]string{"charset": "utf8mb4"}
	return cfg.FormatDSN(), cfg.Addr
}

// isMySQL: q is a pool of the mysql driver.
func isMySQL(q any) bool {
	db, ok := q.(*sql.DB)
	if !ok {
		return false
	}
	_, my := db.Driver().(*mysql.MySQLDriver)
	return my
}

// schemaPred selects the application's schema in information_schema.
func schemaPred(q any) string {
	if isMySQL(q) {
		return "table_schema = DATABASE()"
	}
	return "table_schema = 'public'"
}

// placeholder is the i-th bind parameter (from 1).
func placeholder(q any, i int) string {
	if isMySQL(q) {
		return "?"
	}
	return fmt.Sprintf("$%d", i)
}

func quoteIdentsFor(q any, names []string) string {
	if !isMySQL(q) {
		return quoteIdents(names)
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "`" + n + "`"
	}
	return strings.Join(out, ", ")
}

// errMyLockTimeout is the cause reported for an injected migration failure
// on MySQL.
var errMyLockTimeout = &mysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded; try restarting transaction"}

// pyMySQLError renders a MySQL error as SQLAlchemy prints pymysql's:
// (pymysql.err.OperationalError) (1060, "Duplicate column name 'x'").
func pyMySQLError(me *mysql.MySQLError) string {
	class := "OperationalError"
	switch me.Number {
	case 1062, 1048, 1451, 1452, 1216, 1217, 1169, 1557:
		class = "IntegrityError"
	case 1050, 1064, 1146, 1149, 1102, 1103, 1110, 1166, 1319:
		class = "ProgrammingError"
	case 1406, 1265, 1264, 1366:
		class = "DataError"
	}
	// Python's repr of the message: single quotes unless it has some.
	msg := "'" + strings.ReplaceAll(me.Message, `\`, `\\`) + "'"
	if strings.Contains(me.Message, "'") {
		msg = `"` + me.Message + `"`
		if strings.Contains(me.Message, `"`) {
			msg = "'" + strings.ReplaceAll(me.Message, "'", `\'`) + "'"
		}
	}
	return fmt.Sprintf("(pymysql.err.%s) (%d, %s)", class, me.Number, msg)
}

// upgradeMySQL brings db to the last revision of m.revs as Alembic does on
// MySQL: one transaction in name, but each DDL statement commits what came
// before it, so a failure keeps every statement up to the last DDL and the
// stamp of the last revision that finished; a rerun then fails on what is
// already there ("Duplicate column name", #3202).
func (m *pgMigrator) upgradeMySQL(ctx context.Context, db *sql.DB) (res migrationResult, err error) {
	chain, err := myChain(m.opts)
	if err != nil {
		return res, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	m.logf("Context impl MySQLImpl.")
	m.logf("Will assume non-transactional DDL.")
	res, start, err := m.begin(ctx, conn)
	if err != nil {
		return res, err
	}
	// pymysql's connection: autocommit off, so DML waits for the next DDL
	// (or the commit at the end) and a failure rolls back only that.
	if _, err := conn.ExecContext(ctx, "SET autocommit = 0"); err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
		conn.ExecContext(context.WithoutCancel(ctx), "SET autocommit = 1")
	}()
	to := res.from
	for _, rev := range m.revs[start:] {
		stmts := chain[rev.ID]
		if m.failsAt(rev) {
			for _, s := range stmts[:(len(stmts)+1)/2] {
				if err := myExec(ctx, conn, s); err != nil {
					return res, err
				}
			}
			return res, errMyLockTimeout
		}
		m.logf("Running upgrade %s -> %s, %s", to, rev.ID, rev.Message)
		if rev.Before != nil {
			if err := rev.Before(ctx, conn); err != nil {
				return res, err
			}
		}
		for _, s := range stmts {
			if err := myExec(ctx, conn, s); err != nil {
				return res, err
			}
		}
		if rev.ID == BaseRevision && m.bootstrapFile != "" {
			if err := writeBootstrap(m.bootstrapFile, m.version); err != nil {
				return res, err
			}
		}
		if to == "" {
			_, err = conn.ExecContext(ctx, "INSERT INTO alembic_version (version_num) VALUES (?)", rev.ID)
		} else {
			_, err = conn.ExecContext(ctx, "UPDATE alembic_version SET version_num = ? WHERE version_num = ?", rev.ID, to)
		}
		if err != nil {
			return res, err
		}
		to = rev.ID
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return res, err
	}
	res.to = to
	return res, nil
}

// myExec runs one translated statement; the drop-foreign-keys marker
// drops what information_schema lists.
func myExec(ctx context.Context, conn *sql.Conn, s string) error {
	target, ok := strings.CutPrefix(s, myDropFKMarker)
	if !ok {
		_, err := conn.ExecContext(ctx, s)
		return err
	}
	table, column, _ := strings.Cut(target, " ")
	q := `SELECT DISTINCT constraint_name FROM information_schema.key_column_usage
	WHERE table_schema = DATABASE() AND table_name = ? AND referenced_table_name IS NOT NULL AND (? = '' OR column_name = ?)`
	rows, err := conn.QueryContext(ctx, q, table, column, column)
	if err != nil {
		return err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s DROP FOREIGN KEY `%s`", table, n)); err != nil {
			return err
		}
	}
	return nil
}

// asMySQLError finds a MySQL server error in err's chain.
func asMySQLError(err error) (*mysql.MySQLError, bool) {
	var me *mysql.MySQLError
	return me, errors.As(err, &me)
}
