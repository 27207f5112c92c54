package metrics_test

import (
	"testing"

	"github.com/scribeq/scribeq/pkg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
