package web

import (
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/query"
)

func (s *Server) loadTemplates() error {
	funcs := template.FuncMap{
		"asset":    s.assetURL,
		"clock":    clock,
		"duration": duration,
		"money":    money,
		"when":     when,
		"secs":     secsParam,
		"hours":    hours,
		"snippet":  snippet,
		"pct":      pct,
		"count":    func(n int64) string { return thousands(n) },
		"human":    human,
		"short":    short,
		"plural":   plural,
	}
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html")
	if err != nil {
		return fmt.Errorf("web: parse layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("web: list templates: %w", err)
	}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		if strings.HasSuffix(n, "/layout.html") || strings.HasPrefix(n, "templates/_") {
			continue
		}
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(templateFS, n)
		}
		if err != nil {
			return fmt.Errorf("web: parse %s: %w", n, err)
		}
		s.pages[strings.TrimSuffix(n[strings.LastIndex(n, "/")+1:], ".html")] = t
	}
	return nil
}

// clock writes seconds as m:ss, or h:mm:ss from an hour on.
func clock(secs float64) string {
	if secs < 0 || math.IsNaN(secs) {
		secs = 0
	}
	t := int64(secs)
	h, m, s := t/3600, t/60%60, t%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// duration writes an audio duration; "~" marks intake's estimate.
func duration(secs *float64, estimated bool) string {
	if secs == nil {
		return "—"
	}
	d := clock(math.Round(*secs))
	if estimated {
		d = "~" + d
	}
	return d
}

func money(v *float64, currency string) string {
	if v == nil {
		return "—"
	}
	return moneyValue(*v, currency)
}

func moneyValue(v float64, currency string) string {
	prec := 2
	if v != 0 && math.Abs(v) < 0.1 {
		prec = 4
	}
	return strings.TrimSpace(strconv.FormatFloat(v, 'f', prec, 64) + " " + currency)
}

// when writes a time element: UTC in the page, the reader's local time
// once the script has run.
func when(v any) template.HTML {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return "—"
		}
		t = *x
	default:
		return "—"
	}
	if t.IsZero() {
		return "—"
	}
	u := t.UTC()
	return template.HTML(`<time datetime="` + u.Format(time.RFC3339) + `">` + u.Format("2006-01-02 15:04:05") + ` UTC</time>`)
}

// secsParam formats a moment for a ?t= link: seconds, at most two decimals.
func secsParam(v float64) string {
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

func hours(secs float64) string {
	h := secs / 3600
	switch {
	case h == 0:
		return "0 h"
	case h < 0.1:
		return fmt.Sprintf("%.0f min", math.Max(1, math.Round(secs/60)))
	case h < 10:
		return fmt.Sprintf("%.2f h", h)
	}
	return fmt.Sprintf("%.1f h", h)
}

// snippet turns query's match markers into <mark>, escaping the rest.
func snippet(s string) template.HTML {
	s = template.HTMLEscapeString(strings.ReplaceAll(s, "\n", " "))
	s = strings.NewReplacer(query.SnippetStart, "<mark>", query.SnippetStop, "</mark>").Replace(s)
	return template.HTML(s)
}

func pct(done, total int64) int64 {
	if total <= 0 {
		return 0
	}
	// Never round up to 100 before everything is done.
	return done * 100 / total
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var parts []string
	for len(s) > 3 {
		parts = append(parts, s[len(s)-3:])
		s = s[:len(s)-3]
	}
	parts = append(parts, s)
	slices.Reverse(parts)
	out := strings.Join(parts, ",")
	if neg {
		out = "-" + out
	}
	return out
}

// human writes a wait like "3 min" or "2 h 5 min".
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// short cuts an id to n characters, marking the cut.
func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
