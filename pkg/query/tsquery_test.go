package query

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPositiveUnits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		query string // as Postgres prints websearch_to_tsquery's result
		want  []unit
		or    string
	}{
		{`'run'`, []unit{{{lex: "run"}}}, `'run'`},
		{`'quick' <-> 'fox' | 'run' & !( 'slow' <-> 'dog' ) & 'walk'`,
			[]unit{{{lex: "quick"}, {lex: "fox", off: 1}}, {{lex: "run"}}, {{lex: "walk"}}},
			`'quick' <-> 'fox' | 'run' | 'walk'`},
		{`'quick' <2> 'fox' <-> 'jump'`, []unit{{{lex: "quick"}, {lex: "fox", off: 2}, {lex: "jump", off: 3}}},
			`'quick' <2> 'fox' <-> 'jump'`},
		{`'a-b' <-> 'a' <-> 'b' & 'it''s' & 'back\\slash':*`,
			[]unit{{{lex: "a-b"}, {lex: "a", off: 1}, {lex: "b", off: 2}}, {{lex: "it's"}}, {{lex: "back\\slash", prefix: true}}},
			`'a-b' <-> 'a' <-> 'b' | 'it''s' | 'back\\slash':*`},
		{`!!'x' & !'y'`, []unit{{{lex: "x"}}}, `'x'`},
		{`( 'a' | 'b' ) <-> 'c'`, []unit{{{lex: "a"}}, {{lex: "b"}}, {{lex: "c"}}}, `'a' | 'b' | 'c'`},
	} {
		q, err := parseTSQuery(tt.query)
		require.NoError(t, err, tt.query)
		units := positiveUnits(q)
		require.Equal(t, tt.want, units, tt.query)
		require.Equal(t, tt.or, orQuery(units), tt.query)
	}
	for _, bad := range []string{`'open`, `'a' &`, `( 'a'`, `'a' <x> 'b'`, `'a' 'b'`} {
		_, err := parseTSQuery(bad)
		require.Error(t, err, bad)
	}
}

func TestFirstMatch(t *testing.T) {
	t.Parallel()
	words := [][]string{{"the"}, {"quick"}, {"brown"}, {"fox"}, {"quick"}, {"fox"}, {"e-mail", "e", "mail"}, {"address"}}
	phrase := unit{{lex: "quick"}, {lex: "fox", off: 1}}
	require.Equal(t, 4, firstMatch([]unit{phrase}, words), "the phrase, not the first quick")
	require.Equal(t, 1, firstMatch([]unit{{{lex: "quick"}}}, words))
	require.Equal(t, 2, firstMatch([]unit{phrase, {{lex: "bro", prefix: true}}}, words), "earliest unit wins")
	// Positions of a hyphenated word do not line up with words: fall back
	// to its lexemes.
	require.Equal(t, 6, firstMatch([]unit{{{lex: "e-mail"}, {lex: "e", off: 1}, {lex: "mail", off: 2}, {lex: "address", off: 3}}}, words))
	require.Equal(t, -1, firstMatch([]unit{{{lex: "zebra"}}}, words))
}
