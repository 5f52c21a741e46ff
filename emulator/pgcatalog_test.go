package emulator

import (
	"context"
	"testing"

	"github.com/gpustack-deploy/gpustack-deploy/catalog"
)

// TestPGChainAgainstCatalog cross-checks the hand-written v2 chain with the
// catalog's schema probes: after each v2 release head, the database must
// have every table and column the catalog's probe asks for. The two are
// written independently from the fact sheet; a difference means one of
// them misread it.
func TestPGChainAgainstCatalog(t *testing.T) {
	t.Parallel()
	_, db := startTestPG(t)
	ctx := context.Background()
	cat := catalog.Default()
	for _, name := range []string{"v2.0.0", "v2.0.2", "v2.1.0", "v2.1.2", "v2.2.0rc1", "v2.2.0", "v2.2.3"} {
		rel, _ := ParseRelease(name)
		if _, err := (&pgMigrator{revs: pgChainFor(rel)}).upgrade(ctx, db); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		have, err := pgSchema(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		rev, ok := cat.Revision(rel.Head())
		if !ok {
			t.Fatalf("catalog lacks %s", rel.Head())
		}
		for _, m := range rev.Probe().Check(have) {
			t.Errorf("%s (%s): the emulator lacks %s", name, rel.Head(), m)
		}
	}
}
