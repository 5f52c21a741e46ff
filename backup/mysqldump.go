package backup

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// MySQLDumpName is mysqldump's SQL dump of an external MySQL database.
const MySQLDumpName = "gpustack.sql"

// mysqlRevisionInsert starts the INSERT of alembic_version's row.
const mysqlRevisionInsert = "INSERT INTO `alembic_version` VALUES"

// mysqlDumpTail is the last line mysqldump (and mariadb-dump) writes: a
// dump without it was cut short.
const mysqlDumpTail = "-- Dump completed"

var (
	mysqlCreateTable = regexp.MustCompile("^CREATE TABLE `([^`]+)`")
	mysqlValues      = regexp.MustCompile(`^\s*\('([^']*)'\)`)
)

// MySQLDumpInfo is what a mysqldump file says about the database.
type MySQLDumpInfo struct {
	// Tables are the tables the dump creates, in order.
	Tables []string
	// Revision is alembic_version's row; "" when the dump has none.
	Revision string
}

// InspectMySQLDump reads the dump at p: it must start as a MySQL or
// MariaDB dump and end with mysqldump's completion line.
func InspectMySQLDump(p string) (MySQLDumpInfo, error) {
	var info MySQLDumpInfo
	f, err := os.Open(p)
	if err != nil {
		return info, fmt.Errorf("read %s: %w", filepath.Base(p), err)
	}
	defer f.Close()
	return inspectMySQLDump(f, filepath.Base(p))
}

func inspectMySQLDump(r io.Reader, name string) (MySQLDumpInfo, error) {
	var info MySQLDumpInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 64<<20) // extended INSERTs are long lines
	first, last := "", ""
	afterInsert := false
	for sc.Scan() {
		line := sc.Text()
		if first == "" {
			first = line
		}
		if strings.TrimSpace(line) != "" {
			last = line
		}
		if m := mysqlCreateTable.FindStringSubmatch(line); m != nil {
			info.Tables = append(info.Tables, m[1])
		}
		// mysqldump writes `INSERT INTO t VALUES (…);` on one line,
		// MariaDB's from 10.11 puts the values on the next.
		if afterInsert {
			if m := mysqlValues.FindStringSubmatch(line); m != nil {
				info.Revision = m[1]
			}
			afterInsert = false
		}
		if strings.HasPrefix(line, mysqlRevisionInsert) {
			if m := mysqlValues.FindStringSubmatch(strings.TrimPrefix(line, mysqlRevisionInsert)); m != nil {
				info.Revision = m[1]
			} else {
				afterInsert = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return info, fmt.Errorf("read %s: %w", name, err)
	}
	if !strings.HasPrefix(first, "-- MySQL dump") && !strings.HasPrefix(first, "-- MariaDB dump") && !strings.HasPrefix(first, "/*M!999999") {
		return info, fmt.Errorf("%s is not a mysqldump file", name)
	}
	if !strings.HasPrefix(last, mysqlDumpTail) {
		return info, fmt.Errorf("%s ends without %q: the dump was cut short", name, mysqlDumpTail)
	}
	return info, nil
}

// externalDumpCheck checks the dump file of an external-dump backup,
// whichever database it came from.
func (s *Store) externalDumpCheck(m Manifest) error {
	dir := s.Path(m.ID)
	for _, f := range m.Files {
		if f.Name == MySQLDumpName {
			_, err := InspectMySQLDump(filepath.Join(dir, MySQLDumpName))
			return err
		}
	}
	return checkDumpHeader(filepath.Join(dir, PGDumpName))
}
