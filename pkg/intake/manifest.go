package intake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/scribeq/scribeq/pkg/event"
)

// Manifests list one item per row, each with its own options and metadata.
//
// CSV: a header row, then one row per item. Columns (names are
// case-insensitive):
//
//	path | url        one of the two columns is required; each row fills exactly one
//	language         ISO-639-1/-3 code
//	diarize          true/false (also 1/0, yes/no)
//	num_speakers     1-32
//	keyterms         terms separated by ";"
//	model            scribe_v2 | scribe_v1
//	timestamps       word | character | none
//	tag_audio_events true/false
//	multichannel     true/false
//	entity_detection all | pii | phi | pci | other | offensive_language | a type
//	anything else    metadata; a "metadata." prefix is optional and removed
//	                 (use it for a metadata key that is also an option's name)
//
// An empty cell leaves the option as the command line set it, and adds no
// metadata key.
//
// JSONL: one JSON object per line (blank lines ignored):
//
//	{"path": "a.mp3", "options": {"language": "en", "diarize": true}, "metadata": {"customer": "acme"}}
//	{"url": "https://…/b.mp3", "language": "de", "keyterms": ["Zahnarzt"], "ticket": 4411}
//
// Options may be given in an "options" object or as top-level fields (same
// names as the CSV columns; keyterms a list or a ";"-separated string);
// "metadata" is an object of text, numbers or booleans; any other top-level
// field with such a value is metadata too.
//
// A relative path is relative to the manifest's folder. A row may name a
// file, a folder, a glob or an archive (not another manifest). A bad row is
// reported as Failed with its file:line, and the other rows go on.

// manifest reads a .csv or .jsonl manifest.
func (s *scanner) manifest(ctx context.Context, p string, o origin) error {
	if o.from == "" {
		key := absPath(p)
		if s.seen[key] {
			return nil
		}
		s.seen[key] = true
	}
	f, err := os.Open(p)
	if err != nil {
		s.fail(o, p, fmt.Sprintf("read manifest %s: %s", p, errText(err)))
		return nil
	}
	defer func() { _ = f.Close() }()
	if strings.EqualFold(filepath.Ext(p), ".csv") {
		return s.csvManifest(ctx, p, f, o)
	}
	return s.jsonlManifest(ctx, p, f, o)
}

// row queues what one good manifest row names.
func (s *scanner) row(ctx context.Context, manifest string, line int, target string, opts event.Options, meta map[string]string, o origin) error {
	ro := origin{from: fmt.Sprintf("%s:%d", manifest, line), opts: opts, meta: mergeMeta(o.meta, meta)}
	if !strings.Contains(target, "://") && !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(manifest), target)
	}
	return s.named(ctx, target, ro, false)
}

// badRow reports a row that names nothing usable.
func (s *scanner) badRow(manifest string, line int, reason string) {
	label := fmt.Sprintf("%s:%d", manifest, line)
	s.fail(origin{from: label}, label, reason)
}

func (s *scanner) csvManifest(ctx context.Context, p string, f io.Reader, o origin) error {
	r := csv.NewReader(skipBOM(f))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("it is empty")
		}
		s.fail(o, p, fmt.Sprintf("read manifest %s: no header row: %s", p, err))
		return nil
	}
	cols := make([]string, len(header)) // normalised column names
	pathCol, urlCol := -1, -1
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		name := strings.ToLower(h)
		if seen[name] && name != "" {
			s.fail(o, p, fmt.Sprintf("manifest %s: column %q appears twice", p, h))
			return nil
		}
		seen[name] = true
		switch name {
		case "path":
			pathCol = i
		case "url":
			urlCol = i
		}
		cols[i] = h
	}
	if pathCol < 0 && urlCol < 0 {
		s.fail(o, p, fmt.Sprintf("manifest %s: the header needs a path or url column (it has %s)", p, strings.Join(header, ", ")))
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			s.badRow(p, pe.StartLine, "not valid CSV: "+pe.Err.Error())
			continue
		}
		if err != nil {
			s.fail(o, p, fmt.Sprintf("read manifest %s: %s", p, errText(err)))
			return nil
		}
		line, _ := r.FieldPos(0)
		if len(rec) != len(cols) {
			s.badRow(p, line, fmt.Sprintf("%d fields, the header has %d", len(rec), len(cols)))
			continue
		}
		cell := func(i int) string {
			if i < 0 {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		target, err := oneTarget(cell(pathCol), cell(urlCol))
		if err != nil {
			s.badRow(p, line, err.Error())
			continue
		}
		opts, meta := o.opts, map[string]string{}
		if err := func() error {
			for i, col := range cols {
				v := cell(i)
				if i == pathCol || i == urlCol || col == "" || v == "" {
					continue
				}
				if strings.HasPrefix(strings.ToLower(col), "metadata.") {
					meta[col[len("metadata."):]] = v
					continue
				}
				known, err := setOption(&opts, optionKey(col), v)
				if err != nil {
					return fmt.Errorf("column %s: %w", col, err)
				}
				if !known {
					meta[col] = v
				}
			}
			return validate(&opts, columnName)
		}(); err != nil {
			s.badRow(p, line, err.Error())
			continue
		}
		if err := s.row(ctx, p, line, target, opts, meta, o); err != nil {
			return err
		}
	}
}

func (s *scanner) jsonlManifest(ctx context.Context, p string, f io.Reader, o origin) error {
	sc := bufio.NewScanner(skipBOM(f))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := 0
	for sc.Scan() {
		line++
		if err := ctx.Err(); err != nil {
			return err
		}
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		target, opts, meta, err := parseJSONRow(text, o.opts)
		if err != nil {
			s.badRow(p, line, err.Error())
			continue
		}
		if err := s.row(ctx, p, line, target, opts, meta, o); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			s.badRow(p, line+1, "line longer than 1 MiB; the rest of the manifest was not read")
			return nil
		}
		s.fail(o, p, fmt.Sprintf("read manifest %s: %s", p, errText(err)))
	}
	return nil
}

func parseJSONRow(text []byte, base event.Options) (target string, opts event.Options, meta map[string]string, err error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return "", opts, nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", opts, nil, errors.New("more than one JSON value on the line")
	}
	str := func(k string) (string, error) {
		switch v := obj[k].(type) {
		case nil:
			return "", nil
		case string:
			return strings.TrimSpace(v), nil
		}
		return "", fmt.Errorf("%s: want a string", k)
	}
	ps, err := str("path")
	if err != nil {
		return "", opts, nil, err
	}
	us, err := str("url")
	if err != nil {
		return "", opts, nil, err
	}
	if target, err = oneTarget(ps, us); err != nil {
		return "", opts, nil, err
	}
	opts, meta = base, map[string]string{}
	var nested map[string]any
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		switch k {
		case "path", "url":
			continue
		case "options":
			m, ok := v.(map[string]any)
			if !ok && v != nil {
				return "", opts, nil, errors.New("options: want an object")
			}
			nested = m
			continue
		case "metadata":
			m, ok := v.(map[string]any)
			if !ok && v != nil {
				return "", opts, nil, errors.New("metadata: want an object")
			}
			for _, mk := range slices.Sorted(maps.Keys(m)) {
				text, ok := scalarText(m[mk])
				if !ok {
					return "", opts, nil, fmt.Errorf("metadata.%s: want text, a number or a boolean", mk)
				}
				if text != "" {
					meta[mk] = text
				}
			}
			continue
		}
		if mk, ok := strings.CutPrefix(k, "metadata."); ok {
			text, ok := scalarText(v)
			if !ok {
				return "", opts, nil, fmt.Errorf("%s: want text, a number or a boolean", k)
			}
			if text != "" {
				meta[mk] = text
			}
			continue
		}
		known, err := setJSONOption(&opts, k, v)
		if err != nil {
			return "", opts, nil, err
		}
		if known {
			continue
		}
		text, ok := scalarText(v)
		if !ok {
			return "", opts, nil, fmt.Errorf("%s: not an option, and metadata must be text, a number or a boolean", k)
		}
		if text != "" {
			meta[k] = text
		}
	}
	for _, k := range slices.Sorted(maps.Keys(nested)) {
		known, err := setJSONOption(&opts, k, nested[k])
		if err != nil {
			return "", opts, nil, err
		}
		if !known {
			return "", opts, nil, fmt.Errorf("options.%s: unknown option", k)
		}
	}
	if err := validate(&opts, columnName); err != nil {
		return "", opts, nil, err
	}
	return target, opts, meta, nil
}

// oneTarget checks that a row names exactly one of a path and a URL.
func oneTarget(path, url string) (string, error) {
	switch {
	case path != "" && url != "":
		return "", errors.New("has both a path and a url; give one")
	case path != "":
		return path, nil
	case url != "":
		if !strings.Contains(url, "://") {
			return "", fmt.Errorf("url %q: not a URL", url)
		}
		return url, nil
	}
	return "", errors.New("needs a path or a url")
}

// optionKey normalises a column or field name to an option's name.
func optionKey(name string) string {
	k := strings.ToLower(strings.TrimSpace(name))
	k = strings.NewReplacer("-", "_", " ", "_").Replace(k)
	switch k {
	case "multi_channel", "use_multi_channel":
		return "multichannel"
	case "keyterm":
		return "keyterms"
	case "language_code":
		return "language"
	case "timestamps_granularity":
		return "timestamps"
	}
	return k
}

// columnName names an option in validation errors about a manifest row.
func columnName(flag string) string {
	switch flag {
	case "num-speakers":
		return "num_speakers"
	case "keyterm":
		return "keyterms"
	case "entity-detection":
		return "entity_detection"
	}
	return flag
}

// setOption sets an option from its text; known is false when key names
// no option.
func setOption(o *event.Options, key, v string) (known bool, err error) {
	switch key {
	case "language":
		o.Language = v
	case "model":
		o.Model = v
	case "timestamps":
		o.Timestamps = v
	case "entity_detection":
		o.EntityDetection = v
	case "keyterms":
		o.Keyterms = nil
		for t := range strings.SplitSeq(v, ";") {
			if t = strings.TrimSpace(t); t != "" {
				o.Keyterms = append(o.Keyterms, t)
			}
		}
	case "num_speakers":
		n, err := strconv.Atoi(v)
		if err != nil {
			return true, fmt.Errorf("num_speakers %q: want a number", v)
		}
		o.NumSpeakers = n
	case "diarize", "tag_audio_events", "multichannel":
		b, err := parseBool(v)
		if err != nil {
			return true, fmt.Errorf("%s %q: want true or false", key, v)
		}
		switch key {
		case "diarize":
			o.Diarize = b
		case "multichannel":
			o.MultiChannel = b
		default:
			o.TagAudioEvents = &b
		}
	default:
		return false, nil
	}
	return true, nil
}

// setJSONOption sets an option from a JSON value.
func setJSONOption(o *event.Options, name string, v any) (known bool, err error) {
	key := optionKey(name)
	if v == nil {
		_, known := optionNames[key]
		return known, nil
	}
	if list, ok := v.([]any); ok && key == "keyterms" {
		o.Keyterms = nil
		for _, t := range list {
			s, ok := t.(string)
			if !ok {
				return true, errors.New("keyterms: want a list of strings")
			}
			o.Keyterms = append(o.Keyterms, s)
		}
		return true, nil
	}
	text, ok := scalarText(v)
	if !ok {
		if _, known := optionNames[key]; known {
			return true, fmt.Errorf("%s: want a single value", name)
		}
		return false, nil
	}
	return setOption(o, key, text)
}

var optionNames = map[string]struct{}{
	"language": {}, "model": {}, "timestamps": {}, "entity_detection": {}, "keyterms": {},
	"num_speakers": {}, "diarize": {}, "tag_audio_events": {}, "multichannel": {},
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return strings.TrimSpace(x), true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return x.String(), true
	}
	return "", false
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "y", "on":
		return true, nil
	case "no", "n", "off":
		return false, nil
	}
	return strconv.ParseBool(v)
}

// skipBOM drops a UTF-8 byte order mark, which spreadsheet programs write.
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	return br
}
