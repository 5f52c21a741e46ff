package backup

import (
	"reflect"
	"strings"
	"testing"
)

func TestInspectMySQLDump(t *testing.T) {
	good := "-- MariaDB dump 10.19  Distrib 10.11.11-MariaDB, for debian-linux-gnu (x86_64)\n" +
		"--\n-- Host: 172.17.0.3    Database: gpustack\n" +
		"DROP TABLE IF EXISTS `alembic_version`;\n" +
		"CREATE TABLE `alembic_version` (\n  `version_num` varchar(32) NOT NULL\n) ENGINE=InnoDB;\n" +
		"INSERT INTO `alembic_version` VALUES ('8ad0f94c92e8');\n" +
		"CREATE TABLE `models` (\n  `id` int(11) NOT NULL AUTO_INCREMENT\n);\n" +
		"INSERT INTO `models` VALUES (1),(2);\n" +
		"\n-- Dump completed on 2026-11-28 10:20:00\n"
	info, err := inspectMySQLDump(strings.NewReader(good), "gpustack.sql")
	if err != nil {
		t.Fatal(err)
	}
	if want := (MySQLDumpInfo{Tables: []string{"alembic_version", "models"}, Revision: "8ad0f94c92e8"}); !reflect.DeepEqual(info, want) {
		t.Errorf("got %+v, want %+v", info, want)
	}
	cut := strings.TrimSuffix(good, "\n-- Dump completed on 2026-11-28 10:20:00\n")
	if _, err := inspectMySQLDump(strings.NewReader(cut), "gpustack.sql"); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("a dump cut short: %v", err)
	}
	if _, err := inspectMySQLDump(strings.NewReader("PGDMP\x01\x0e"), "gpustack.sql"); err == nil || !strings.Contains(err.Error(), "not a mysqldump") {
		t.Errorf("not a dump: %v", err)
	}
	split := strings.Replace(good, "VALUES ('8ad0f94c92e8');", "VALUES\n('8ad0f94c92e8');", 1)
	if info, err := inspectMySQLDump(strings.NewReader(split), "gpustack.sql"); err != nil || info.Revision != "8ad0f94c92e8" {
		t.Errorf("MariaDB 10.11's INSERT with the values on the next line: %+v, %v", info, err)
	}
	mysql := strings.Replace(good, "-- MariaDB dump 10.19", "-- MySQL dump 10.13", 1)
	if _, err := inspectMySQLDump(strings.NewReader(mysql), "gpustack.sql"); err != nil {
		t.Errorf("a MySQL dump: %v", err)
	}
}
