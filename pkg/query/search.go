package query

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Snippet markers: Hit.Snippet has SnippetStart before and SnippetStop
// after each word that matched. They are private-use characters, which no
// transcript contains, so a caller can swap them for terminal bold, HTML
// tags or nothing without escaping issues.
const (
	SnippetStart = "\uE000"
	SnippetStop  = "\uE001"
)

// ErrEmptyQuery means a search query has nothing to look for.
var ErrEmptyQuery = errors.New("nothing to search for")

// HitsPerJob caps how many chunks of one job Search returns, so that one
// long recording that says the words often does not fill the page.
const HitsPerJob = 3

// SearchCandidates is how many matching chunks Search ranks at most. Rank
// needs each chunk's tsvector, which lives in the table, so ranking every
// match of a word said in a third of 600,000 chunks reads most of the
// table (about a second). Past this many, the chunks ranked are the first
// ones the index yields (storage order, roughly oldest first) among those
// the filter keeps: narrow the search with a filter or a second word to
// rank all of its matches.
const SearchCandidates = 10_000

// snippetOptions for ts_headline: a fragment of about 15 to 30 words
// around the best match.
const snippetOptions = "StartSel=" + SnippetStart + ", StopSel=" + SnippetStop +
	", MaxWords=30, MinWords=15, ShortWord=2, MaxFragments=0"

// Hit is a passage that matches a search.
type Hit struct {
	JobID     string `json:"job_id,omitempty"`
	RequestID string `json:"request_id"`
	// Name is the audio's file name, else its path, URL or the job id.
	Name      string `json:"name"`
	BatchName string `json:"batch_name,omitempty"`
	Language  string `json:"language,omitempty"`
	// Rank is ts_rank_cd of the passage: higher is better.
	Rank float64 `json:"rank"`
	// Start is when the first matching word is said, in seconds from the
	// start of the audio; End is when the passage ends. Both are 0 when the
	// transcript has no timestamps.
	Start float64 `json:"start"`
	End   float64 `json:"end"`
	// ChunkStart is when the passage starts.
	ChunkStart float64 `json:"chunk_start"`
	Speaker    string  `json:"speaker,omitempty"`
	Channel    *int    `json:"channel,omitempty"`
	// Seq is the passage's position in the transcript (transcript_chunks.seq).
	Seq int `json:"seq"`
	// Snippet is part of the passage around the match, matched words
	// between SnippetStart and SnippetStop.
	Snippet string `json:"snippet"`
}

// searchConfig is a text-search configuration in use and the query as it
// reads in that configuration.
type searchConfig struct {
	name     string
	query    string // tsquery::text, for matching and ranking
	positive string // what to highlight: the query without its negations
	units    []unit // for finding the first matching word; nil if unparsable
}

// Search finds the passages whose words match q and returns the best
// limit of them (default 20), at most HitsPerJob per job, best first. When
// more than SearchCandidates passages match, the best are chosen among
// SearchCandidates of them (see there).
//
// q is web-search syntax (websearch_to_tsquery): words must all appear,
// "quoted words" must appear in that order, `or` between words makes
// either do, and -word excludes. Each transcript is matched in its own
// language's configuration, so "running" finds "run" in English, and a
// French word finds its French forms; transcripts whose language has no
// configuration use simple (exact words, no stop words).
//
// An empty query, or one of stop words or exclusions only, fails with
// ErrEmptyQuery.
func (d *DB) Search(ctx context.Context, q string, f Filter, limit int) ([]Hit, error) {
	if limit <= 0 {
		limit = 20
	}
	if strings.TrimSpace(q) == "" {
		return nil, fmt.Errorf("query: search: %w: the query is empty", ErrEmptyQuery)
	}
	cfgs, err := d.searchConfigs(ctx, q)
	if err != nil || len(cfgs) == 0 {
		return nil, err
	}
	hits, passages, err := d.searchChunks(ctx, cfgs, f, limit, d.candidates)
	if err != nil || len(hits) == 0 {
		return hits, err
	}
	if err := d.placeHits(ctx, cfgs, hits, passages); err != nil {
		return nil, err
	}
	return hits, nil
}

// searchConfigs returns the text-search configurations in use and q
// parsed in each, leaving out those where q has nothing to look for (only
// stop words of that language). The configurations are those of the
// languages the transcripts are in: a skip scan over the language_code
// index lists them in well under a millisecond, so there is no cache to go
// stale when a new language arrives.
func (d *DB) searchConfigs(ctx context.Context, q string) ([]*searchConfig, error) {
	rows, err := d.pool.Query(ctx, `
		WITH RECURSIVE l(code) AS (
			SELECT min(language_code) FROM transcripts
			UNION ALL
			SELECT (SELECT min(language_code) FROM transcripts WHERE language_code > l.code) FROM l WHERE l.code IS NOT NULL
		), c(cfg) AS (
			SELECT text_search_config(code) FROM l WHERE code IS NOT NULL
			UNION
			SELECT 'simple' WHERE EXISTS (SELECT 1 FROM transcripts WHERE language_code IS NULL)
		)
		SELECT c.cfg, q::text, numnode(q), querytree(q)
		FROM c CROSS JOIN LATERAL websearch_to_tsquery(c.cfg::regconfig, $1) AS q
		ORDER BY c.cfg`, q)
	if err != nil {
		return nil, fmt.Errorf("query: search: parse %q: %w", q, err)
	}
	var (
		out                   []*searchConfig
		name, text, indexable string
		nodes                 int
		found, onlyExclusions bool
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &text, &nodes, &indexable}, func() error {
		found = true
		if nodes == 0 {
			return nil // only stop words in this language
		}
		if indexable == "T" {
			// Nothing positive to look up in the index: "-word" alone
			// would match (and scan) almost everything.
			onlyExclusions = true
			return nil
		}
		c := &searchConfig{name: name, query: text, positive: text}
		if tree, err := parseTSQuery(text); err == nil {
			c.units = positiveUnits(tree)
			c.positive = orQuery(c.units)
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("query: search: parse %q: %w", q, err)
	}
	switch {
	case !found:
		return nil, nil // no transcripts yet
	case len(out) > 0:
		return out, nil
	case onlyExclusions:
		return nil, fmt.Errorf("query: search: %w: %q only excludes words; say what to look for", ErrEmptyQuery, q)
	}
	return nil, fmt.Errorf("query: search: %w: %q has no words to look for (only stop words such as \"the\" or punctuation)",
		ErrEmptyQuery, q)
}

// searchChunks runs the search. Each configuration contributes
// (ts_config = cfg AND tsv @@ query) to an OR, which Postgres answers with
// one bitmap scan of the GIN index per distinct query; ts_config is
// checked on the rows found. Ranks are computed for every match, then the best
// HitsPerJob chunks of each job compete for the limit.
func (d *DB) searchChunks(ctx context.Context, cfgs []*searchConfig, f Filter, limit, candidates int) ([]Hit, []passage, error) {
	sql, p, err := searchSQL(cfgs, f, limit, candidates)
	if err != nil {
		return nil, nil, err
	}
	rows, err := d.pool.Query(ctx, sql, p...)
	if err != nil {
		return nil, nil, fmt.Errorf("query: search: %w", err)
	}
	var hits []Hit
	var passages []passage
	for rows.Next() {
		var h Hit
		var ps passage
		var text string
		var offsets []int32
		if err := rows.Scan(&h.RequestID, &h.Seq, &h.JobID, &h.Rank, &h.Name, &h.BatchName, &h.Language,
			&h.ChunkStart, &h.End, &h.Speaker, &h.Channel, &text, &offsets, &ps.starts, &ps.cfg, &h.Snippet); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("query: search: %w", err)
		}
		h.Start = h.ChunkStart
		ps.words = splitWords(text, offsets)
		hits = append(hits, h)
		passages = append(passages, ps)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("query: search: %w", err)
	}
	return hits, passages, nil
}

// searchSQL builds the search statement (see searchChunks).
func searchSQL(cfgs []*searchConfig, f Filter, limit, candidates int) (string, params, error) {
	var p params
	var match, rank, headline []string
	// Configurations that read the query alike (a name, a number, a word
	// no stemmer changes) share one index scan.
	var queries []string
	same := map[string][]string{}
	for _, c := range cfgs {
		if same[c.query] == nil {
			queries = append(queries, c.query)
		}
		same[c.query] = append(same[c.query], c.name)
	}
	for _, q := range queries {
		names, query := p.add(same[q]), p.add(q)
		match = append(match, fmt.Sprintf("(c.ts_config = ANY(%s::text[]) AND c.tsv @@ %s::tsquery)", names, query))
		rank = append(rank, fmt.Sprintf("WHEN c.ts_config = ANY(%s::text[]) THEN %s::tsquery", names, query))
	}
	for _, c := range cfgs {
		headline = append(headline, fmt.Sprintf("WHEN %s THEN %s::tsquery", p.add(c.name), p.add(c.positive)))
	}
	join, filter := "", "TRUE"
	if !f.IsZero() {
		var err error
		if filter, err = f.where(&p, "s"); err != nil {
			return "", nil, err
		}
		join = "JOIN job_summary s ON s.job_id = c.job_id"
	}
	sql := `
		WITH m AS (
			SELECT c.request_id, c.seq, c.job_id, ts_rank_cd(c.tsv, CASE ` + strings.Join(rank, " ") + ` END) AS rank
			FROM transcript_chunks c ` + join + `
			WHERE (` + strings.Join(match, " OR ") + `) AND ` + filter + `
			LIMIT ` + p.add(candidates) + `
		), best AS (
			SELECT m.*, row_number() OVER (PARTITION BY coalesce(m.job_id, m.request_id)
				ORDER BY m.rank DESC, m.request_id, m.seq) AS nth
			FROM m
		), top AS (
			SELECT * FROM best WHERE nth <= ` + p.add(HitsPerJob) + `
			ORDER BY rank DESC, job_id, request_id, seq
			LIMIT ` + p.add(limit) + `
		)
		SELECT top.request_id, top.seq, coalesce(top.job_id, ''), top.rank,
		       coalesce(nullif(j.source->>'name', ''), nullif(j.source->>'path', ''), nullif(j.source->>'url', ''), top.job_id, top.request_id),
		       coalesce(b.name, ''), coalesce(t.language_code, ''),
		       coalesce(c.start_s, 0), coalesce(c.end_s, 0), coalesce(c.speaker, ''), c.channel,
		       c.text, c.word_offsets, c.word_starts, c.ts_config,
		       ts_headline(c.ts_config::regconfig, c.text, CASE c.ts_config ` + strings.Join(headline, " ") + ` END, ` + p.add(snippetOptions) + `)
		FROM top
		JOIN transcript_chunks c ON c.request_id = top.request_id AND c.seq = top.seq
		JOIN transcripts t ON t.request_id = top.request_id
		LEFT JOIN jobs j ON j.job_id = top.job_id
		LEFT JOIN batches b ON b.batch_id = j.batch_id
		ORDER BY top.rank DESC, top.job_id, top.request_id, top.seq`
	return sql, p, nil
}

// passage is a hit's chunk, word by word.
type passage struct {
	cfg    string
	words  []string
	starts []*float32
}

// splitWords cuts a chunk's text at its word offsets; each word keeps the
// spacing after it, which changes none of its lexemes.
func splitWords(text string, offsets []int32) []string {
	out := make([]string, 0, len(offsets))
	for i, off := range offsets {
		end := len(text)
		if i+1 < len(offsets) {
			end = int(offsets[i+1])
		}
		if int(off) > end || end > len(text) {
			break // offsets that do not fit the text: place nothing
		}
		out = append(out, text[off:end])
	}
	return out
}

// placeHits sets each hit's Start to the time of the first word in its
// chunk that the query looks for: the chunk's words are turned into
// lexemes by the chunk's own configuration (one round trip for all hits)
// and matched against the query's lexemes and phrases.
func (d *DB) placeHits(ctx context.Context, cfgs []*searchConfig, hits []Hit, passages []passage) error {
	var cfgCol, wordCol []string
	for _, ps := range passages {
		for _, w := range ps.words {
			cfgCol = append(cfgCol, ps.cfg)
			wordCol = append(wordCol, w)
		}
	}
	rows, err := d.pool.Query(ctx, `SELECT tsvector_to_array(to_tsvector(u.cfg::regconfig, u.word))
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(cfg, word, i) ORDER BY u.i`, cfgCol, wordCol)
	if err != nil {
		return fmt.Errorf("query: search: place hits: %w", err)
	}
	lexemes, err := pgx.CollectRows(rows, pgx.RowTo[[]string])
	if err != nil {
		return fmt.Errorf("query: search: place hits: %w", err)
	}
	if len(lexemes) != len(wordCol) {
		return fmt.Errorf("query: search: place hits: %d lexeme sets for %d words", len(lexemes), len(wordCol))
	}
	byName := make(map[string]*searchConfig, len(cfgs))
	for _, c := range cfgs {
		byName[c.name] = c
	}
	for i, ps := range passages {
		ws := lexemes[:len(ps.words)]
		lexemes = lexemes[len(ps.words):]
		c := byName[ps.cfg]
		if c == nil || c.units == nil {
			continue
		}
		if w := firstMatch(c.units, ws); w >= 0 && w < len(ps.starts) && ps.starts[w] != nil {
			hits[i].Start = float64(*ps.starts[w])
		}
	}
	return nil
}
