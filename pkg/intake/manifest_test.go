package intake_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/intake"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

func TestManifestCSV(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	a := writeFile(t, filepath.Join(dir, "lists", "a.wav"), wav(t, 1, 1))
	c := writeFile(t, filepath.Join(dir, "lists", "sub", "c.wav"), wav(t, 1, 3))
	writeFile(t, filepath.Join(dir, "lists", "b.wav"), wav(t, 1, 2))
	m := writeFile(t, filepath.Join(dir, "lists", "calls.csv"), []byte("\ufeff"+strings.Join([]string{
		"Path,url,language,diarize,num_speakers,keyterms,customer,metadata.language",
		`a.wav,,en,true,2,alpha; beta gamma,acme,fr`, // 2 good
		`,,de,,,,,`,                             // 3 neither path nor url
		`b.wav,,xx,maybe,,,,`,                   // 4 bad bool
		`sub/c.wav,,,,,,"bolt, inc",`,           // 5 good, relative to the manifest's folder
		`missing.wav,,,,,,,`,                    // 6 no such file
		`b.wav,,,,40,,,`,                        // 7 num_speakers out of range
		`b.wav,https://example.org/b.mp3,,,,,,`, // 8 both
		`,https://example.org/talk.mp3,,,,,,`,   // 9 good URL
		`,ftp://example.org/talk.mp3,,,,,,`,     // 10 not https
		`b.wav,en`,                              // 11 too few fields
		`b.wav,,,,,"unterminated`,               // 12 broken quoting (runs to the end)
	}, "\n")+"\n"))

	in := intake.New(q, nil)
	res, err := in.Submit(ctx, intake.Request{Sources: []string{m}, Metadata: map[string]string{"project": "p1"}}, nil)
	require.NoError(t, err)
	got := map[string]intake.Result{}
	for _, r := range res {
		require.NotEmpty(t, r.From, "every item of a manifest names its row: %+v", r)
		got[strings.TrimPrefix(r.From, m)] = r
	}
	require.Len(t, got, 11, "one result per row: %v", res)

	// Good rows are queued with their own options and metadata.
	for _, row := range []string{":2", ":5", ":9"} {
		require.Equal(t, intake.Queued, got[row].Status, "row %s: %+v", row, got[row])
	}
	require.Equal(t, a, got[":2"].Source)
	require.Equal(t, c, got[":5"].Source)
	ja := jobByID(t, q, got[":2"].JobID)
	require.Equal(t, event.Options{Model: "scribe_v2", Language: "en", Diarize: true, NumSpeakers: 2, Keyterms: []string{"alpha", "beta gamma"}}, ja.Options)
	require.Equal(t, map[string]string{"customer": "acme", "language": "fr", "project": "p1"}, ja.Metadata)
	jc := jobByID(t, q, got[":5"].JobID)
	require.Equal(t, event.Options{Model: "scribe_v2"}, jc.Options)
	require.Equal(t, map[string]string{"customer": "bolt, inc", "project": "p1"}, jc.Metadata)
	require.Equal(t, "https://example.org/talk.mp3", jobByID(t, q, got[":9"].JobID).Source.URL)

	// Bad rows are errors that name file:line and say what is wrong.
	for row, want := range map[string]string{
		":3":  "needs a path or a url",
		":4":  `diarize "maybe"`,
		":6":  "no such file",
		":7":  "num_speakers 40",
		":8":  "both a path and a url",
		":10": "only https",
		":11": "2 fields, the header has 8",
		":12": "not valid CSV",
	} {
		r := got[row]
		require.Equal(t, intake.Failed, r.Status, "row %s: %+v", row, r)
		require.Contains(t, r.Reason, want, "row %s", row)
		require.Equal(t, m+row, r.From)
	}
	require.Len(t, jobs(t, q), 3)
}

func TestManifestJSONL(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	q := natstest.Queue(t, queue.Config{})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.wav"), wav(t, 1, 1))
	writeFile(t, filepath.Join(dir, "sub", "c.wav"), wav(t, 1, 3))
	m := writeFile(t, filepath.Join(dir, "items.jsonl"), []byte(strings.Join([]string{
		`{"path":"a.wav","options":{"language":"en","diarize":true,"tag_audio_events":false},"metadata":{"customer":"acme","n":3}}`,
		`{"url":"https://example.org/talk.mp3","language":"de","keyterms":["Zahnarzt"],"ticket":4411,"metadata.language":"x"}`,
		`not json`,
		`{"path":"sub/c.wav","options":{"bogus":1}}`,
		`{"path":"sub/c.wav","num_speakers":"many"}`,
		``,
		`{"metadata":{"a":"b"}}`,
		`{"path":"sub/c.wav","metadata":{"nested":{"x":1}}}`,
		`{"path":"sub/c.wav","model":"scribe_v1","keyterms":"a;b"}`,
		`{"path":"sub/c.wav","multichannel":"yes","num-speakers":3}`,
		`{"path":"sub/c.wav","keyterms":"x; y","timestamps":"character"} {}`,
		`{"path":"sub/c.wav","keyterms":"x; y","timestamps":"character"}`,
		`{"path":"items.jsonl"}`,
	}, "\n")))

	res, err := intake.New(q, nil).Submit(ctx, intake.Request{Sources: []string{m}}, nil)
	require.NoError(t, err)
	got := map[string]intake.Result{}
	for _, r := range res {
		got[strings.TrimPrefix(r.From, m)] = r
	}
	require.Len(t, got, 12)
	require.Equal(t, intake.Skipped, got[":13"].Status)
	require.Equal(t, "a manifest row cannot name another manifest", got[":13"].Reason)
	for _, row := range []string{":1", ":2", ":12"} {
		require.Equal(t, intake.Queued, got[row].Status, "row %s: %+v", row, got[row])
	}
	f := false
	ja := jobByID(t, q, got[":1"].JobID)
	require.Equal(t, event.Options{Model: "scribe_v2", Language: "en", Diarize: true, TagAudioEvents: &f}, ja.Options)
	require.Equal(t, map[string]string{"customer": "acme", "n": "3"}, ja.Metadata)
	ju := jobByID(t, q, got[":2"].JobID)
	require.Equal(t, event.Options{Model: "scribe_v2", Language: "de", Keyterms: []string{"Zahnarzt"}}, ju.Options)
	require.Equal(t, map[string]string{"ticket": "4411", "language": "x"}, ju.Metadata)
	jc := jobByID(t, q, got[":12"].JobID)
	require.Equal(t, []string{"x", "y"}, jc.Options.Keyterms)
	require.Equal(t, "character", jc.Options.Timestamps)
	require.Equal(t, filepath.Join(dir, "sub", "c.wav"), jc.Source.Path)

	for row, want := range map[string]string{
		":3":  "not a JSON object",
		":4":  "options.bogus: unknown option",
		":5":  `num_speakers "many"`,
		":7":  "needs a path or a url",
		":8":  "metadata.nested",
		":9":  "only scribe_v2 accepts keyterms",
		":10": "multichannel: cannot be combined",
		":11": "more than one JSON value",
	} {
		require.Equal(t, intake.Failed, got[row].Status, "row %s: %+v", row, got[row])
		require.Contains(t, got[row].Reason, want, "row %s", row)
	}
}
