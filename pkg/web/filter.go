package web

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/scribeq/scribeq/pkg/query"
)

// filterForm is the filter part of the jobs, search and export URLs: the
// same filters as `scribeq jobs`, with the same spelling.
type filterForm struct {
	States   map[string]bool
	Batch    string
	Since    string
	Until    string
	Metadata string // k=v, comma-separated
	Language string
	Sort     string
}

// Every state, for the form's check boxes.
func (filterForm) AllStates() []string { return query.States }

// SortKeys are the sort orders the form offers.
func (filterForm) SortKeys() []string { return query.SortKeys }

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// parseFilter reads the filter from a query string. The error is for the
// person who typed it.
func parseFilter(v url.Values, now time.Time) (filterForm, query.Filter, error) {
	ff := filterForm{
		States: map[string]bool{}, Batch: strings.TrimSpace(v.Get("batch")), Since: strings.TrimSpace(v.Get("since")),
		Until: strings.TrimSpace(v.Get("until")), Metadata: strings.TrimSpace(v.Get("metadata")),
		Language: strings.TrimSpace(v.Get("language")), Sort: strings.TrimSpace(v.Get("sort")),
	}
	f := query.Filter{Language: ff.Language, JobIDs: v["job"]}
	for _, st := range v["state"] {
		if st == "" {
			continue
		}
		if !slices.Contains(query.States, st) {
			return ff, f, fmt.Errorf("unknown state %q: want one of %s", st, strings.Join(query.States, ", "))
		}
		ff.States[st] = true
		f.States = append(f.States, st)
	}
	if uuidRE.MatchString(ff.Batch) {
		f.BatchID = ff.Batch
	} else {
		f.BatchName = ff.Batch
	}
	var err error
	if f.Since, err = query.ParseWhen(ff.Since, now); err != nil {
		return ff, f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = query.ParseWhen(ff.Until, now); err != nil {
		return ff, f, fmt.Errorf("until: %w", err)
	}
	for _, pair := range strings.Split(ff.Metadata, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return ff, f, fmt.Errorf("metadata %q: want key=value", pair)
		}
		if f.Metadata == nil {
			f.Metadata = map[string]string{}
		}
		f.Metadata[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return ff, f, nil
}

// filterQuery is the query string of v's filter (no page, no search words),
// for links that keep the filter.
func filterQuery(v url.Values) string {
	out := url.Values{}
	for _, k := range []string{"state", "batch", "since", "until", "metadata", "language", "job", "sort", "limit"} {
		for _, x := range v[k] {
			if x != "" {
				out.Add(k, x)
			}
		}
	}
	return out.Encode()
}
