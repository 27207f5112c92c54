package query

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Filter selects jobs for Jobs, Search, Transcripts and BatchProgress. Zero
// fields select everything; set fields must all match.
type Filter struct {
	// States keeps jobs in any of these states (see States).
	States []string
	// BatchID keeps the jobs of one submit call.
	BatchID string
	// BatchName keeps the jobs of every batch with this name.
	BatchName string
	// Since and Until bound when the job was queued: Since ≤ queued_at < Until.
	Since, Until time.Time
	// Metadata keeps jobs whose metadata has every one of these pairs.
	Metadata map[string]string
	// Language keeps jobs whose transcript is in this language, written as
	// ISO-639-1 ("en"), ISO-639-3 ("eng") or a configuration name
	// ("english"): every code of the same language matches.
	Language string
	// JobIDs keeps these jobs.
	JobIDs []string
}

// IsZero reports whether f selects every job.
func (f Filter) IsZero() bool {
	return len(f.States) == 0 && f.BatchID == "" && f.BatchName == "" && f.Since.IsZero() && f.Until.IsZero() &&
		len(f.Metadata) == 0 && f.Language == "" && len(f.JobIDs) == 0
}

// params collects query arguments and hands out their placeholders.
type params []any

func (p *params) add(v any) string {
	*p = append(*p, v)
	return "$" + strconv.Itoa(len(*p))
}

// where returns f as SQL conditions on the job_summary columns under alias
// s, joined by AND ("TRUE" for the zero filter).
func (f Filter) where(p *params, s string) (string, error) {
	var conds []string
	if len(f.States) > 0 {
		for _, st := range f.States {
			if !slices.Contains(States, st) {
				return "", fmt.Errorf("query: filter: unknown state %q (want one of %s)", st, strings.Join(States, ", "))
			}
		}
		conds = append(conds, s+".state = ANY("+p.add(f.States)+"::text[])")
	}
	if f.BatchID != "" {
		conds = append(conds, s+".batch_id = "+p.add(f.BatchID))
	}
	if f.BatchName != "" {
		conds = append(conds, s+".batch_name = "+p.add(f.BatchName))
	}
	if !f.Since.IsZero() {
		conds = append(conds, s+".queued_at >= "+p.add(f.Since)+"::timestamptz")
	}
	if !f.Until.IsZero() {
		conds = append(conds, s+".queued_at < "+p.add(f.Until)+"::timestamptz")
	}
	if len(f.Metadata) > 0 {
		md, err := json.Marshal(f.Metadata)
		if err != nil {
			return "", fmt.Errorf("query: filter: metadata: %w", err)
		}
		conds = append(conds, s+".metadata @> "+p.add(string(md))+"::jsonb")
	}
	if f.Language != "" {
		// Every code of the language the given code (or name) names, and
		// the code itself for languages language_configs does not know.
		l := p.add(strings.ToLower(strings.TrimSpace(f.Language)))
		conds = append(conds, s+".language_code = ANY(ARRAY(SELECT code FROM language_configs WHERE language = "+l+
			" OR language = (SELECT language FROM language_configs WHERE code = "+l+")) || "+l+"::text)")
	}
	if len(f.JobIDs) > 0 {
		conds = append(conds, s+".job_id = ANY("+p.add(f.JobIDs)+"::text[])")
	}
	if len(conds) == 0 {
		return "TRUE", nil
	}
	return strings.Join(conds, " AND "), nil
}

// ParseWhen reads "24h", "7d", "2026-11-01" or an RFC 3339 time, for the
// --since and --until of the commands and the console's filter alike.
func ParseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want a duration back from now (24h, 7d) or a date (2026-11-01)", s)
}
