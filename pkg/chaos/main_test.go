package chaos_test

import (
	"testing"

	"github.com/scribeq/scribeq/pkg/pgtest"
)

// Postgres starts only when a test asks pgtest.NewDB for a database, so the
// harness's own tests (without the chaos tag) need none.
func TestMain(m *testing.M) { pgtest.Main(m) }
