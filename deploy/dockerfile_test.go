package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd   string // upper case: FROM, RUN, ...
	Args  string
	Stage int // index of the FROM it belongs to (-1: before the first)
	Line  int
}

func parseDockerfile(t testing.TB) []instruction {
	t.Helper()
	b, err := os.ReadFile(repo(t, dockerfile))
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	stage := -1
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		text := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instruction{Cmd: cmd, Args: strings.TrimSpace(args), Stage: stage, Line: start})
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t)
	var froms []instruction
	for _, in := range ins {
		if in.Cmd == "FROM" {
			froms = append(froms, in)
		}
	}
	if len(froms) < 2 {
		t.Fatalf("%d FROM: want a multi-stage build (compile, then a small runtime image)", len(froms))
	}
	final := len(froms) - 1
	in := func(stage int, cmd string) []instruction {
		var r []instruction
		for _, i := range ins {
			if i.Stage == stage && i.Cmd == cmd {
				r = append(r, i)
			}
		}
		return r
	}

	// The build stage compiles a static, version-stamped binary.
	var build *instruction
	for _, i := range ins {
		if i.Cmd == "RUN" && strings.Contains(i.Args, "go build") {
			build = &i
			break
		}
	}
	if build == nil {
		t.Fatal("no RUN go build")
	}
	if build.Stage == final {
		t.Error("go build runs in the final stage: the Go toolchain would ship in the image")
	}
	stageText := ""
	for _, i := range ins {
		if i.Stage == build.Stage {
			stageText += i.Cmd + " " + i.Args + "\n"
		}
	}
	if !strings.Contains(build.Args, "CGO_ENABLED=0") {
		t.Errorf("line %d: go build without CGO_ENABLED=0: the binary would need a libc the final image lacks", build.Line)
	}
	if !strings.Contains(build.Args, "./cmd/scribeq") {
		t.Errorf("line %d: go build does not build ./cmd/scribeq", build.Line)
	}
	if !strings.Contains(build.Args, "-trimpath") {
		t.Errorf("line %d: go build without -trimpath (the builder's paths would be in the binary)", build.Line)
	}
	m := regexp.MustCompile(`-X\s+main\.version=\$\{?(\w+)\}?`).FindStringSubmatch(build.Args)
	if m == nil {
		t.Errorf("line %d: go build does not stamp -X main.version=${VERSION}", build.Line)
	} else if !regexp.MustCompile(`(?m)^ARG ` + m[1] + `(=|\s|$)`).MatchString(stageText) {
		t.Errorf("the build stage has no ARG %s for -X main.version", m[1])
	}
	if !mainHasVersionVar(t) {
		t.Error("cmd/scribeq has no package-level `var version string` for -X main.version to set")
	}
	for _, cache := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
		if !strings.Contains(build.Args, "--mount=type=cache,target="+cache) {
			t.Errorf("line %d: go build has no cache mount on %s", build.Line, cache)
		}
	}
	// The Go of the image is the Go of go.mod.
	goVer := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(mustRead(t, "go.mod"))
	arg := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindStringSubmatch(string(mustRead(t, dockerfile)))
	if goVer == nil || arg == nil || arg[1] != string(goVer[1]) {
		t.Errorf("ARG GO_VERSION %v, want go.mod's go %s", arg, goVer)
	}

	// The final stage: small, non-root, the binary as entrypoint.
	base := froms[final].Args
	if !strings.Contains(base, "distroless/static") && !strings.HasPrefix(base, "scratch") {
		t.Errorf("final image FROM %s: want distroless static (no shell, no package manager)", base)
	}
	users := in(final, "USER")
	if len(users) == 0 {
		t.Fatal("the final stage has no USER: the container would run as root")
	}
	uid := strings.Split(users[len(users)-1].Args, ":")[0]
	if uid == "root" || uid == "0" {
		t.Errorf("USER %s: want a non-root user", users[len(users)-1].Args)
	}
	if e := in(final, "ENTRYPOINT"); len(e) != 1 || e[0].Args != `["`+binInImage+`"]` {
		t.Errorf("ENTRYPOINT %v: want [\"%s\"] in exec form (no shell in the image)", e, binInImage)
	}
	copied := false
	for _, c := range in(final, "COPY") {
		copied = copied || (strings.Contains(c.Args, "--from=") && strings.HasSuffix(c.Args, " "+binInImage))
	}
	if !copied {
		t.Errorf("no COPY --from=<build stage> ... %s", binInImage)
	}
	labels := ""
	for _, l := range in(final, "LABEL") {
		labels += l.Args + " "
	}
	for _, k := range []string{"title", "description", "source", "version", "revision", "created"} {
		if !strings.Contains(labels, "org.opencontainers.image."+k+"=") {
			t.Errorf("no LABEL org.opencontainers.image.%s", k)
		}
	}
	if !strings.Contains(labels, `org.opencontainers.image.version="${VERSION}"`) {
		t.Error(`LABEL org.opencontainers.image.version is not "${VERSION}"`)
	}

	// EXPOSE lists every port a compose service listens on.
	exposed := map[string]bool{}
	for _, e := range in(final, "EXPOSE") {
		for _, p := range strings.Fields(e.Args) {
			exposed[strings.TrimSuffix(p, "/tcp")] = true
		}
	}
	p := mustLoad(t, []string{"emulator", "cli"})
	for _, s := range p.Services {
		if !isScribeq(s) {
			continue
		}
		for _, port := range listenPorts(s) {
			if !exposed[port] {
				t.Errorf("%s listens on %s, which the image does not EXPOSE", s.Name, port)
			}
		}
	}

	// The ingress spool is a named volume; Docker fills a new one from the
	// image's folder, owner included, so the folder must exist there and
	// belong to the image's user.
	spool := envValue(p.Services["ingress"], "SCRIBEQ_SPOOL_DIR")
	owned := false
	for _, c := range in(final, "COPY") {
		f := strings.Fields(c.Args)
		dest := f[len(f)-1]
		if strings.Contains(c.Args, "--chown="+uid) && (spool == dest || strings.HasPrefix(spool, strings.TrimSuffix(dest, "/")+"/")) {
			owned = true
		}
	}
	if !owned || !strings.Contains(string(mustRead(t, dockerfile)), "mkdir -p /out"+spool) {
		t.Errorf("the image does not create %s owned by uid %s: a fresh spool volume would be root's, and the ingress could not write it", spool, uid)
	}
}

func mustRead(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(repo(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mainHasVersionVar looks for `var version = "..."` in package main.
func mainHasVersionVar(t testing.TB) bool {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(repo(t, "cmd", "scribeq", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, sp := range g.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != "version" {
						continue
					}
					if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
						return true
					}
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// dockerfileEnv is what ENV sets in the final image.
func dockerfileEnv(t testing.TB) map[string]string {
	t.Helper()
	ins := parseDockerfile(t)
	final := ins[len(ins)-1].Stage
	env := map[string]string{}
	for _, i := range ins {
		if i.Stage != final || i.Cmd != "ENV" {
			continue
		}
		for _, kv := range strings.Fields(i.Args) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

// The build context holds what `go build ./cmd/scribeq` reads and nothing
// secret.
func TestDockerignore(t *testing.T) {
	f, err := os.Open(repo(t, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(rel string) bool {
		ok, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	// Every file of this module the binary is built from.
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}{{end}}`, "./cmd/scribeq")
	cmd.Dir = repo(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	need := []string{"go.mod", "go.sum"}
	for _, p := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(repo(t), p)
		if err != nil {
			t.Fatal(err)
		}
		need = append(need, rel)
	}
	if len(need) < 20 {
		t.Fatalf("go list found only %v", need)
	}
	for _, rel := range need {
		if excluded(rel) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", rel)
		}
	}
	for _, rel := range []string{
		".env", ".git/config", ".scribeq/dev.json", "bin/scribeq", "scribeq", "artifacts/x.png",
		"docs/performance.md", "testdata/audio/01-the-quick-brown-fox.wav", "pkg/intake/intake_test.go",
		"pkg/audio/testdata/x.mp3", "docker-compose.yml",
	} {
		if !excluded(rel) {
			t.Errorf(".dockerignore lets %s into the build context", rel)
		}
	}
	if slices.Contains(patterns, "!.env") {
		t.Error(".dockerignore re-includes .env")
	}
}
