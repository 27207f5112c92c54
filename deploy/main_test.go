package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/scribeq/scribeq/pkg/pgtest"
)

// The stack test needs Postgres: pgtest's server (TEST_DATABASE_URL, else
// Docker, else a throwaway local cluster). The other tests never start it.
func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	composeFile = "docker-compose.yml"
	envExample  = ".env.example"
	dockerfile  = "deploy/Dockerfile"
	// binInImage is where deploy/Dockerfile puts the binary; compose
	// healthchecks call it by this path.
	binInImage = "/usr/local/bin/scribeq"
)

// repo is the repository root: tests run in deploy/.
func repo(t testing.TB, rel ...string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(append([]string{root}, rel...)...)
}

// loadProject loads docker-compose.yml as `docker compose --env-file
// .env.example --profile P... config` would: .env.example is the env file,
// env (NAME=value) plays the shell's environment and wins over it. The
// test's own environment is never read.
func loadProject(t testing.TB, profiles []string, env ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{repo(t, composeFile)},
		cli.WithWorkingDirectory(repo(t)),
		cli.WithEnvFiles(repo(t, envExample)),
		cli.WithDotEnv,
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return opts.LoadProject(ctx)
}

func mustLoad(t testing.TB, profiles []string, env ...string) *types.Project {
	t.Helper()
	p, err := loadProject(t, profiles, env...)
	if err != nil {
		t.Fatalf("load %s with profiles %v: %v", composeFile, profiles, err)
	}
	return p
}

// isScribeq tells the services that run the scribeq image.
func isScribeq(s types.ServiceConfig) bool {
	return s.Build != nil && s.Build.Dockerfile == dockerfile
}

// oneShot services run to completion (restart "no"); the rest stay up.
func oneShot(s types.ServiceConfig) bool { return s.Restart == types.RestartPolicyNo }

// subcommands are the scribeq commands a service runs: its command's
// first word, or for the cli service every command it is there for.
func subcommands(s types.ServiceConfig) []string {
	if s.Name == "cli" {
		return []string{"submit", "status"}
	}
	if len(s.Command) == 0 {
		return nil
	}
	return []string{s.Command[0]}
}

// buildScribeq compiles ./cmd/scribeq (and nats-server from the module
// go.mod requires, when natsToo) into a folder removed when t ends.
func buildScribeq(t testing.TB, natsToo bool) (scribeq, natsServer string) {
	t.Helper()
	dir := t.TempDir()
	scribeq = filepath.Join(dir, "scribeq")
	builds := [][]string{{"build", "-o", scribeq, "./cmd/scribeq"}}
	if natsToo {
		natsServer = filepath.Join(dir, "nats-server")
		builds = append(builds, []string{"build", "-o", natsServer, "github.com/nats-io/nats-server/v2"})
	}
	for _, args := range builds {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = repo(t)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return scribeq, natsServer
}

// flag is one flag of a command, as its --help shows it.
type flag struct {
	Name       string
	Env        []string
	Default    string
	HasDefault bool
	Help       string
}

var (
	flagLine = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9-]+)(?:=("(?:[^"\\]|\\.)*"|\S+))?\s*(.*)$`)
	envNames = regexp.MustCompile(`\((\$[A-Z][A-Z0-9_]*(?:,\s*\$[A-Z][A-Z0-9_]*)*)\)`)
	envName  = regexp.MustCompile(`\$([A-Z][A-Z0-9_]*)`)
)

// commandFlags runs `scribeq <cmd> --help` and returns its flags by
// environment variable. The binary is the source of truth: a flag added,
// renamed or given an environment variable shows up here.
func commandFlags(t testing.TB, bin, cmd string) map[string]flag {
	t.Helper()
	c := exec.Command(bin, cmd, "--help")
	// A clean environment (no SCRIBEQ_* of the caller's shown as default)
	// and wide lines: one flag per line.
	c.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "COLUMNS=10000"}
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("scribeq %s --help: %v\n%s", cmd, err, out)
	}
	flags := map[string]flag{}
	var cur *flag
	flush := func() {
		if cur == nil {
			return
		}
		if all := envNames.FindAllString(cur.Help, -1); len(all) > 0 {
			for _, e := range envName.FindAllStringSubmatch(all[len(all)-1], -1) {
				cur.Env = append(cur.Env, e[1])
			}
		}
		for _, e := range cur.Env {
			flags[e] = *cur
		}
		cur = nil
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flush()
			f := flag{Name: m[1], Help: m[3]}
			switch v := m[2]; {
			case strings.HasPrefix(v, `"`):
				f.Default, f.HasDefault = strings.Trim(v, `"`), true
			case v != "" && !(v[0] >= 'A' && v[0] <= 'Z'): // not a PLACEHOLDER
				f.Default, f.HasDefault = v, true
			}
			cur = &f
			continue
		}
		if cur != nil && strings.TrimSpace(line) != "" && strings.HasPrefix(line, "  ") {
			cur.Help += " " + strings.TrimSpace(line)
			continue
		}
		flush()
	}
	flush()
	if len(flags) == 0 {
		t.Fatalf("scribeq %s --help lists no environment variables:\n%s", cmd, out)
	}
	return flags
}

// reads tells whether any of cmds reads the variable.
func reads(help map[string]map[string]flag, cmds []string, env string) bool {
	return slices.ContainsFunc(cmds, func(c string) bool { _, ok := help[c][env]; return ok })
}
