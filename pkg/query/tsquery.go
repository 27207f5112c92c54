package query

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// tsNode is a parsed tsquery, as Postgres prints one (tsquery::text):
// 'lexeme' operands (optionally :* and weights), ! & | <-> <N> and
// parentheses.
type tsNode struct {
	op     byte // 0 operand, '!', '&', '|', '<' (followed by)
	lex    string
	prefix bool
	dist   int // '<': positions from the left side's last word to the right's first
	l, r   *tsNode
}

// parseTSQuery parses tsquery::text. Precedence, tightest first: ! <N> & |.
func parseTSQuery(s string) (*tsNode, error) {
	p := &tsParser{s: s}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.skip(); p.i != len(p.s) {
		return nil, fmt.Errorf("tsquery %q: unexpected %q", s, p.s[p.i:])
	}
	return n, nil
}

type tsParser struct {
	s string
	i int
}

func (p *tsParser) skip() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *tsParser) peek() byte {
	p.skip()
	if p.i == len(p.s) {
		return 0
	}
	return p.s[p.i]
}

func (p *tsParser) or() (*tsNode, error) {
	l, err := p.and()
	for err == nil && p.peek() == '|' {
		p.i++
		var r *tsNode
		if r, err = p.and(); err == nil {
			l = &tsNode{op: '|', l: l, r: r}
		}
	}
	return l, err
}

func (p *tsParser) and() (*tsNode, error) {
	l, err := p.phrase()
	for err == nil && p.peek() == '&' {
		p.i++
		var r *tsNode
		if r, err = p.phrase(); err == nil {
			l = &tsNode{op: '&', l: l, r: r}
		}
	}
	return l, err
}

func (p *tsParser) phrase() (*tsNode, error) {
	l, err := p.unary()
	for err == nil && p.peek() == '<' {
		end := strings.IndexByte(p.s[p.i:], '>')
		if end < 0 {
			return nil, errors.New("tsquery: unterminated <N>")
		}
		d := 1
		if tok := p.s[p.i+1 : p.i+end]; tok != "-" {
			if d, err = strconv.Atoi(tok); err != nil {
				return nil, fmt.Errorf("tsquery: bad distance <%s>", tok)
			}
		}
		p.i += end + 1
		var r *tsNode
		if r, err = p.unary(); err == nil {
			l = &tsNode{op: '<', dist: d, l: l, r: r}
		}
	}
	return l, err
}

func (p *tsParser) unary() (*tsNode, error) {
	switch p.peek() {
	case '!':
		p.i++
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &tsNode{op: '!', l: n}, nil
	case '(':
		p.i++
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, errors.New("tsquery: missing )")
		}
		p.i++
		return n, nil
	case '\'':
		return p.operand()
	}
	return nil, fmt.Errorf("tsquery %q: expected an operand at %d", p.s, p.i)
}

// operand reads 'lexeme' (quotes and backslashes doubled inside) and its
// optional :weights and :* suffix.
func (p *tsParser) operand() (*tsNode, error) {
	p.i++ // opening quote
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return nil, errors.New("tsquery: unterminated lexeme")
		}
		c := p.s[p.i]
		switch {
		case c == '\\' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
			continue
		case c == '\'' && p.i+1 < len(p.s) && p.s[p.i+1] == '\'':
			b.WriteByte('\'')
			p.i += 2
			continue
		case c == '\'':
			p.i++
		default:
			b.WriteByte(c)
			p.i++
			continue
		}
		break
	}
	n := &tsNode{lex: b.String()}
	if p.i < len(p.s) && p.s[p.i] == ':' {
		p.i++
		for p.i < len(p.s) && strings.IndexByte("*ABCDabcd", p.s[p.i]) >= 0 {
			n.prefix = n.prefix || p.s[p.i] == '*'
			p.i++
		}
	}
	return n, nil
}

// term is one lexeme of a unit, off words after the unit's first.
type term struct {
	lex    string
	prefix bool
	off    int
}

// unit is something the query looks for: a lexeme, or a phrase of
// lexemes at fixed distances.
type unit []term

// positiveUnits lists what q looks for: its lexemes and phrases that are
// not under a negation. A phrase whose parts are not all lexemes (e.g.
// (a | b) <-> c) gives its parts as separate units.
func positiveUnits(q *tsNode) []unit {
	var out []unit
	var walk func(n *tsNode, neg bool)
	walk = func(n *tsNode, neg bool) {
		switch n.op {
		case 0:
			if !neg {
				out = append(out, unit{{lex: n.lex, prefix: n.prefix}})
			}
		case '!':
			walk(n.l, !neg)
		case '<':
			if u, ok := flatPhrase(n); ok {
				if !neg {
					out = append(out, u)
				}
				return
			}
			fallthrough
		default:
			walk(n.l, neg)
			walk(n.r, neg)
		}
	}
	walk(q, false)
	return out
}

// flatPhrase turns a phrase of plain lexemes into terms with offsets.
func flatPhrase(n *tsNode) (unit, bool) {
	switch n.op {
	case 0:
		return unit{{lex: n.lex, prefix: n.prefix}}, true
	case '<':
		l, ok := flatPhrase(n.l)
		if !ok {
			return nil, false
		}
		r, ok := flatPhrase(n.r)
		if !ok {
			return nil, false
		}
		shift := l[len(l)-1].off + n.dist
		for _, t := range r {
			l = append(l, term{lex: t.lex, prefix: t.prefix, off: t.off + shift})
		}
		return l, true
	}
	return nil, false
}

// orQuery writes units as one tsquery that matches any of them, for
// ts_headline: it should mark what was looked for, not what was excluded.
func orQuery(units []unit) string {
	parts := make([]string, 0, len(units))
	for _, u := range units {
		var b strings.Builder
		for i, t := range u {
			if i > 0 {
				if d := t.off - u[i-1].off; d == 1 {
					b.WriteString(" <-> ")
				} else {
					fmt.Fprintf(&b, " <%d> ", d)
				}
			}
			b.WriteString("'" + strings.NewReplacer(`'`, `''`, `\`, `\\`).Replace(t.lex) + "'")
			if t.prefix {
				b.WriteString(":*")
			}
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, " | ")
}

// firstMatch returns the index of the first word at which one of units
// starts, given each word's lexemes, or -1. A phrase is matched word by
// word; when no phrase lines up (a word that counts as several positions,
// such as "e-mail"), the first word holding any of its lexemes is taken.
func firstMatch(units []unit, words [][]string) int {
	best := -1
	try := func(match func(u unit, i int) bool) {
		for _, u := range units {
			for i := range words {
				if best >= 0 && i >= best {
					break
				}
				if match(u, i) {
					best = i
					break
				}
			}
		}
	}
	try(func(u unit, i int) bool {
		for _, t := range u {
			if j := i + t.off; j >= len(words) || !hasLexeme(words[j], t) {
				return false
			}
		}
		return true
	})
	if best < 0 {
		try(func(u unit, i int) bool {
			for _, t := range u {
				if hasLexeme(words[i], t) {
					return true
				}
			}
			return false
		})
	}
	return best
}

func hasLexeme(lexemes []string, t term) bool {
	for _, l := range lexemes {
		if l == t.lex || (t.prefix && strings.HasPrefix(l, t.lex)) {
			return true
		}
	}
	return false
}
