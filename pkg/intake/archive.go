package intake

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// archiveKind recognises an archive by its name.
func archiveKind(name string) itemKind {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".zip"):
		return kindZip
	case strings.HasSuffix(n, ".tar"), strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return kindTar
	}
	return kindNone
}

// cleanEntry is an entry name as shown and filtered: slash-separated,
// without a leading "./" or "/".
func cleanEntry(name string) string {
	n := path.Clean("/" + strings.ReplaceAll(name, `\`, "/"))
	return strings.TrimPrefix(n, "/")
}

// ignoredEntry: dot-files and macOS resource forks (__MACOSX/._a.mp3 has
// the extension of audio and none of its content).
func ignoredEntry(clean string) bool {
	for part := range strings.SplitSeq(clean, "/") {
		if strings.HasPrefix(part, ".") || part == "__MACOSX" {
			return true
		}
	}
	return false
}

// archive scans every entry of a .zip or .tar(.gz) without unpacking it.
func (s *scanner) archive(ctx context.Context, p string, k itemKind, o origin) error {
	if o.from == "" {
		key := absPath(p)
		if s.seen[key] {
			return nil
		}
		s.seen[key] = true
	}
	if k == kindZip {
		return s.zip(ctx, p, o)
	}
	return s.tar(ctx, p, o)
}

// entry makes the item of one archive entry, or settles it by name (it
// returns nil then, or when the entry is ignored).
func (s *scanner) entry(k itemKind, archive, name string, index int, size int64, o origin) *item {
	clean := cleanEntry(name)
	if clean == "" || ignoredEntry(clean) || !s.admit(clean) {
		return nil
	}
	source := archive + "!" + clean
	if reason := skipByName(clean); reason != "" {
		s.skip(o, source, reason)
		return nil
	}
	it := s.newItem(k, source, o)
	it.path, it.entry, it.index = archive, name, index
	if s.precheck(it, size) {
		return nil
	}
	return it
}

// link reports a link entry: its target may be outside the archive, and
// what it names inside is listed in its own right.
func (s *scanner) link(o origin, archive, name string) {
	if clean := cleanEntry(name); clean != "" && !ignoredEntry(clean) && s.admit(clean) {
		s.skip(o, archive+"!"+clean, "a link inside an archive is not followed")
	}
}

func (s *scanner) zip(ctx context.Context, p string, o origin) error {
	zr, err := zip.OpenReader(p)
	if err != nil {
		s.fail(o, p, fmt.Sprintf("open zip archive %s: %s", p, errText(err)))
		return nil
	}
	defer func() { _ = zr.Close() }()
	for i, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.Mode()&fs.ModeSymlink != 0 {
			s.link(o, p, f.Name)
			continue
		}
		if !f.Mode().IsRegular() {
			continue
		}
		it := s.entry(kindZip, p, f.Name, i, int64(f.UncompressedSize64), o)
		if it == nil {
			continue
		}
		if f.Flags&0x1 != 0 {
			it.res.Status, it.res.Reason = Failed, "encrypted zip entry"
			s.report(it)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			it.res.Status, it.res.Reason = Failed, "open zip entry: "+errText(err)
			s.report(it)
			continue
		}
		err = s.read(ctx, it, rc)
		_ = rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) tar(ctx context.Context, p string, o origin) error {
	tr, closeTar, err := openTar(p)
	if err != nil {
		s.fail(o, p, fmt.Sprintf("open tar archive %s: %s", p, errText(err)))
		return nil
	}
	defer closeTar()
	for idx := 0; ; idx++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			// A broken archive stops here; what came before stands.
			s.fail(o, p, fmt.Sprintf("read tar archive %s: %s", p, err))
			return nil
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
		case tar.TypeSymlink, tar.TypeLink:
			s.link(o, p, hdr.Name)
			continue
		default:
			continue
		}
		it := s.entry(kindTar, p, hdr.Name, idx, hdr.Size, o)
		if it == nil {
			continue
		}
		if err := s.read(ctx, it, tr); err != nil {
			return err
		}
	}
}

// openTar opens a tar archive, gunzipping it when its bytes are gzip
// (whatever the name says).
func openTar(p string) (*tar.Reader, func(), error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	closeAll := func() { _ = f.Close() }
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		r = zr
		closeAll = func() { _ = zr.Close(); _ = f.Close() }
	}
	return tar.NewReader(r), closeAll, nil
}
