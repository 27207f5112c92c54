package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Binaries are the programs a Cluster runs.
type Binaries struct {
	Scribeq    string
	NatsServer string
}

// EnvRace, when "1", builds scribeq with the race detector: slower workers,
// but a data race under faults fails loudly in its log.
const EnvRace = "CHAOS_RACE"

// Build compiles scribeq (from this module's cmd/scribeq) and nats-server
// (from the nats-server module go.mod requires, so the server under test is
// the version we ship against, never a distribution's) into a directory
// removed when t ends. Call it once per test binary and share the result.
func Build(t testing.TB) Binaries {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := Binaries{Scribeq: filepath.Join(dir, "scribeq"), NatsServer: filepath.Join(dir, "nats-server")}
	args := []string{"build", "-o", b.Scribeq}
	if os.Getenv(EnvRace) == "1" {
		args = append(args, "-race")
	}
	for _, a := range [][]string{
		append(args, "./cmd/scribeq"),
		{"build", "-o", b.NatsServer, "github.com/nats-io/nats-server/v2"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, "go", a...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("chaos: go %s: %v\n%s", strings.Join(a, " "), err, out)
		}
	}
	return b
}

// moduleRoot is the directory of the go.mod that holds this package.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("chaos: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("chaos: not inside a Go module (go env GOMOD = %q)", mod)
	}
	return filepath.Dir(mod), nil
}
