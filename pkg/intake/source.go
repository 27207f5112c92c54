package intake

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/event"
)

// origin is what every item found under one named source shares.
type origin struct {
	// from is the manifest row or stdin line ("list.csv:12"), or "".
	from string
	opts event.Options
	meta map[string]string
}

// Rules for what is read, in one place:
//
//   - Named directly (an argument, a stdin line, a manifest row, a glob
//     match): an archive is opened, a manifest parsed (not from a manifest
//     row), anything else read and judged by its content alone.
//   - Found inside a folder or an archive: a dot-file or dot-folder is
//     ignored, Include/Exclude decide, an archive in a folder is opened (one
//     inside an archive is not), a file whose extension is not a media
//     extension is skipped by name without being read, the rest are read
//     and judged by content.

// top handles one Request source.
func (s *scanner) top(ctx context.Context, src string, o origin) error {
	if src == "-" {
		return s.stdin(ctx, o)
	}
	return s.named(ctx, src, o, true)
}

// named handles a source the user named: URL, folder, file, or glob.
func (s *scanner) named(ctx context.Context, src string, o origin, manifests bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if strings.Contains(src, "://") {
		return s.url(ctx, src, o)
	}
	fi, err := os.Stat(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && hasGlobMeta(src) {
			return s.glob(ctx, src, o, manifests)
		}
		s.fail(o, src, fmt.Sprintf("read %s: %s", src, errText(err)))
		return nil
	}
	if fi.IsDir() {
		return s.walk(ctx, src, src, o)
	}
	return s.explicit(ctx, src, fi, o, manifests)
}

// explicit handles a file named directly.
func (s *scanner) explicit(ctx context.Context, p string, fi fs.FileInfo, o origin, manifests bool) error {
	if isManifest(p) {
		if !manifests {
			s.skip(o, p, "a manifest row cannot name another manifest")
			return nil
		}
		return s.manifest(ctx, p, o)
	}
	if k := archiveKind(p); k != kindNone {
		return s.archive(ctx, p, k, o)
	}
	return s.file(ctx, p, fi, o)
}

// found handles a file met while walking a folder.
func (s *scanner) found(ctx context.Context, p string, fi fs.FileInfo, o origin) error {
	if k := archiveKind(p); k != kindNone {
		return s.archive(ctx, p, k, o)
	}
	if reason := skipByName(p); reason != "" {
		s.skip(o, p, reason)
		return nil
	}
	return s.file(ctx, p, fi, o)
}

// walk lists a folder recursively; Include/Exclude see paths relative to base.
func (s *scanner) walk(ctx context.Context, root, base string, o origin) error {
	if fi, err := os.Lstat(root); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		// WalkDir does not descend into a symlinked root; a trailing
		// separator resolves it.
		root += string(filepath.Separator)
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			s.fail(o, p, fmt.Sprintf("read %s: %s", p, errText(err)))
			if d != nil && d.IsDir() && p != root {
				return filepath.SkipDir
			}
			return nil
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(base, p)
		if !s.admit(filepath.ToSlash(rel)) {
			return nil
		}
		// Symlinks to files are followed; to folders not, so a loop cannot
		// make the walk endless.
		fi, err := os.Stat(p)
		if err != nil {
			s.fail(o, p, fmt.Sprintf("read %s: %s", p, errText(err)))
			return nil
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		return s.found(ctx, p, fi, o)
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("intake: walk %s: %w", root, err)
	}
	return nil
}

func hasGlobMeta(s string) bool { return strings.ContainsAny(s, "*?[{") }

// glob expands a pattern the shell did not, the way the shell would have:
// each match is as if named directly (folders are walked), except that
// dot-files match only a pattern that names a dot explicitly.
func (s *scanner) glob(ctx context.Context, pattern string, o origin, manifests bool) error {
	base, pat := doublestar.SplitPattern(filepath.ToSlash(pattern))
	if !doublestar.ValidatePattern(pat) {
		s.fail(o, pattern, fmt.Sprintf("bad glob pattern %q", pattern))
		return nil
	}
	matches, err := doublestar.Glob(os.DirFS(filepath.FromSlash(base)), pat)
	if err != nil {
		s.fail(o, pattern, fmt.Sprintf("glob %s: %s", pattern, errText(err)))
		return nil
	}
	dots := strings.HasPrefix(pat, ".") || strings.Contains(pat, "/.")
	slices.Sort(matches)
	var walked []string
	n := 0
	for _, m := range matches {
		if !dots && hiddenPath(m) {
			continue
		}
		if slices.ContainsFunc(walked, func(w string) bool { return w == "." || strings.HasPrefix(m, w+"/") }) {
			continue
		}
		p := filepath.Join(filepath.FromSlash(base), filepath.FromSlash(m))
		fi, err := os.Stat(p)
		if err != nil {
			s.fail(o, p, fmt.Sprintf("read %s: %s", p, errText(err)))
			n++
			continue
		}
		if fi.IsDir() {
			walked = append(walked, m)
			n++
			if err := s.walk(ctx, p, filepath.FromSlash(base), o); err != nil {
				return err
			}
			continue
		}
		if !fi.Mode().IsRegular() || !s.admit(m) {
			continue
		}
		n++
		if err := s.explicit(ctx, p, fi, o, manifests); err != nil {
			return err
		}
	}
	if n == 0 {
		s.fail(o, pattern, "no files match "+pattern)
	}
	return nil
}

func hiddenPath(rel string) bool {
	for part := range strings.SplitSeq(rel, "/") {
		if strings.HasPrefix(part, ".") && part != "." && part != ".." {
			return true
		}
	}
	return false
}

// admit applies Include and Exclude to a slash-separated relative path.
func (s *scanner) admit(rel string) bool {
	match := func(pattern string) bool {
		name := rel
		if !strings.Contains(pattern, "/") {
			name = path.Base(rel)
		}
		ok, _ := doublestar.Match(pattern, name)
		return ok
	}
	if len(s.req.Include) > 0 && !slices.ContainsFunc(s.req.Include, match) {
		return false
	}
	return !slices.ContainsFunc(s.req.Exclude, match)
}

func validPatterns(flag string, patterns []string) error {
	for _, p := range patterns {
		if p == "" || !doublestar.ValidatePattern(p) {
			return fmt.Errorf("%s %q: not a valid glob pattern", flag, p)
		}
	}
	return nil
}

// stdin reads a list of paths and URLs, one per line.
func (s *scanner) stdin(ctx context.Context, o origin) error {
	if s.req.Stdin == nil {
		return errors.New(`intake: source "-" needs a list on stdin, and there is none`)
	}
	if s.stdinRead {
		return errors.New(`intake: source "-" given twice`)
	}
	s.stdinRead = true
	sc := bufio.NewScanner(s.req.Stdin)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		lo := o
		lo.from = fmt.Sprintf("stdin:%d", line)
		if text == "-" {
			s.fail(lo, lo.from, `"-" inside the stdin list`)
			continue
		}
		if err := s.named(ctx, text, lo, true); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("intake: read the list on stdin: %w", err)
	}
	return nil
}

// maxLine bounds one line of a stdin list or JSONL manifest.
const maxLine = 1 << 20

// url queues an https URL as source_url; nothing is downloaded.
func (s *scanner) url(ctx context.Context, raw string, o origin) error {
	it := s.newItem(kindURL, raw, o)
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		it.res.Status, it.res.Reason = Failed, "not a valid URL"
	case u.Scheme != "https":
		it.res.Status, it.res.Reason = Failed, "only https URLs can be sent to ElevenLabs as source_url"
	default:
		it.url = u.String()
		return s.settle(ctx, it, nil)
	}
	s.report(it)
	return nil
}

// file reads one file on disk.
func (s *scanner) file(ctx context.Context, p string, fi fs.FileInfo, o origin) error {
	if o.from == "" {
		// The same file reached twice by one call (a folder and a file
		// in it) is one item; from manifest rows it may differ in options.
		key := absPath(p)
		if s.seen[key] {
			return nil
		}
		s.seen[key] = true
	}
	it := s.newItem(kindFile, p, o)
	it.path = p
	if s.precheck(it, fi.Size()) {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		it.res.Status, it.res.Reason = Failed, fmt.Sprintf("read %s: %s", p, errText(err))
		s.report(it)
		return nil
	}
	defer func() { _ = f.Close() }()
	return s.read(ctx, it, f)
}

// skipByName says why a file found in a folder or archive is not read.
func skipByName(name string) string {
	ext := strings.ToLower(path.Ext(filepath.ToSlash(name)))
	switch {
	case ext == "" || audio.IsMediaExt(name):
		return ""
	case archiveKind(name) != kindNone:
		return "an archive inside an archive is not opened"
	}
	return fmt.Sprintf("not audio or video (%s file, not read)", ext)
}

func isManifest(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".csv", ".jsonl", ".ndjson":
		return true
	}
	return false
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// errText is an error without the Go-specific op prefix a PathError repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func mergeMeta(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	m := maps.Clone(base)
	if m == nil {
		m = map[string]string{}
	}
	maps.Copy(m, over)
	return m
}
