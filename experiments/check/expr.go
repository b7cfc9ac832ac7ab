// Package check decides whether an experiment's hypotheses held and whether
// the system stayed consistent.
//
// Hypotheses are written in a small expression language, in the spirit of
// k6 thresholds:
//
//	order.latency.p99 < 150ms
//	order.success_rate >= 99% and events.lost == 0
//	trace.critical_path(order.PlaceOrder) contains user.GetUser
//	not trace.async_isolated
//	order.latency.p99 < 2 * before.order.latency.p99
//
// ParseExpr turns the text into an Expr with a hand-written lexer and a
// recursive-descent parser; every metric is checked against the vocabulary
// it is given (a Vocabulary: the testbed's is experiments/metrics, where
// each metric is defined beside the code that computes it) and every
// literal against the metric's type, so that a
// mistake such as comparing a latency with a bare number is reported when
// the experiment is loaded, not when it has run. Eval evaluates an Expr
// against the metrics of a run through the Env interface.
//
// The grammar, loosest binding first:
//
//	expr       = and { "or" and }
//	and        = unary { "and" unary }
//	unary      = "not" unary | "(" expr ")" | test
//	test       = metric [ OP rhs | [ "not" ] "contains" NAME ]
//	rhs        = literal | [ NUMBER "*" ] metric
//	metric     = [ "before." | "during." | "after." ] NAME [ "(" NAME ")" ]
//	OP         = "<" | "<=" | ">" | ">=" | "==" | "!="
//	literal    = NUMBER | NUMBER "%" | DURATION | NUMBER "/s" | NUMBER "/m"
//	           | NAME | "quoted string" | 'quoted string' | true | false
//
// The package does no I/O.
package check

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Expr is a parsed hypothesis expression.
type Expr interface {
	// String renders the expression in canonical form.
	String() string
	// Metrics lists every metric the expression reads, in order of first
	// appearance, as written (with any phase prefix) but without the
	// call argument: trace.critical_path(order.PlaceOrder) reads
	// trace.critical_path.
	Metrics() []string
}

// ExprError is a syntax or type error in an expression. Col is the
// 1-based column (in characters) within the expression where the problem
// starts.
type ExprError struct {
	Col  int
	Msg  string
	Hint string
}

// Error formats the error as "col N: message (hint)".
func (e *ExprError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("col %d: %s (%s)", e.Col, e.Msg, e.Hint)
	}
	return fmt.Sprintf("col %d: %s", e.Col, e.Msg)
}

// Bounds on an expression, so that parsing and evaluating it takes bounded
// time and stack whatever is written.
const (
	// MaxExprLen is the longest expression, in bytes.
	MaxExprLen = 4096
	// MaxExprDepth is how deep parentheses and not may nest.
	MaxExprDepth = 32
)

// ParseExpr parses a hypothesis expression and checks its metrics and
// literals against the vocabulary. The error, if any, is an *ExprError.
func ParseExpr(s string, vocab Vocabulary) (Expr, error) {
	if len(s) > MaxExprLen {
		return nil, &ExprError{Col: utf8.RuneCountInString(s[:MaxExprLen]) + 1,
			Msg:  fmt.Sprintf("the expression is %d bytes long, more than the limit of %d", len(s), MaxExprLen),
			Hint: "split it into several hypotheses"}
	}
	p := &exprParser{src: s, vocab: vocab}
	if err := p.lex(); err != nil {
		return nil, err
	}
	if p.peek().kind == exprTokEOF {
		return nil, p.errAt(p.peek(), "empty expression", "write e.g. order.success_rate >= 99%")
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != exprTokEOF {
		return nil, p.errAt(t, fmt.Sprintf("unexpected %s", t.describe()), "expected and, or, or the end of the expression")
	}
	return e, nil
}

// --- lexer -----------------------------------------------------------------

type exprTokKind int

const (
	exprTokEOF exprTokKind = iota
	exprTokName
	exprTokNumber
	exprTokString
	exprTokOp
	exprTokLParen
	exprTokRParen
	exprTokStar
	exprTokPlus
)

type exprToken struct {
	kind exprTokKind
	text string // as written; for strings, the unquoted value
	off  int    // byte offset in the source
}

func (t exprToken) describe() string {
	switch t.kind {
	case exprTokEOF:
		return "end of expression"
	case exprTokString:
		return strconv.Quote(t.text)
	}
	return strconv.Quote(t.text)
}

func (t exprToken) is(word string) bool { return t.kind == exprTokName && t.text == word }

type exprParser struct {
	src   string
	vocab Vocabulary
	toks  []exprToken
	pos   int
	depth int // parentheses and nots open around the current token
}

func (p *exprParser) col(off int) int {
	if off > len(p.src) {
		off = len(p.src)
	}
	return utf8.RuneCountInString(p.src[:off]) + 1
}

func (p *exprParser) errAt(t exprToken, msg, hint string) *ExprError {
	return &ExprError{Col: p.col(t.off), Msg: msg, Hint: hint}
}

func exprIsLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func exprIsDigit(c byte) bool  { return c >= '0' && c <= '9' }

func (p *exprParser) lex() error {
	s := p.src
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case exprIsLetter(c):
			j := i + 1
			for j < len(s) && (exprIsLetter(s[j]) || exprIsDigit(s[j]) || s[j] == '-' || s[j] == '.') {
				j++
			}
			p.toks = append(p.toks, exprToken{kind: exprTokName, text: s[i:j], off: i})
			i = j
		case exprIsDigit(c) || (c == '-' || c == '.') && i+1 < len(s) && (exprIsDigit(s[i+1]) || s[i+1] == '.'):
			j := i + 1
			for j < len(s) {
				switch {
				case exprIsDigit(s[j]) || exprIsLetter(s[j]) || s[j] == '.':
					j++
					continue
				case strings.HasPrefix(s[j:], "µ"):
					j += len("µ")
					continue
				}
				break
			}
			if j < len(s) && s[j] == '%' {
				j++
			} else if j+1 < len(s) && s[j] == '/' && exprIsLetter(s[j+1]) {
				j += 2
				for j < len(s) && exprIsLetter(s[j]) {
					j++
				}
			}
			p.toks = append(p.toks, exprToken{kind: exprTokNumber, text: s[i:j], off: i})
			i = j
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(s) && s[j] != c {
				j++
			}
			if j >= len(s) {
				return &ExprError{Col: p.col(i), Msg: "unterminated string", Hint: fmt.Sprintf("close it with %c", c)}
			}
			p.toks = append(p.toks, exprToken{kind: exprTokString, text: s[i+1 : j], off: i})
			i = j + 1
		case c == '(':
			p.toks = append(p.toks, exprToken{kind: exprTokLParen, text: "(", off: i})
			i++
		case c == ')':
			p.toks = append(p.toks, exprToken{kind: exprTokRParen, text: ")", off: i})
			i++
		case c == '*':
			p.toks = append(p.toks, exprToken{kind: exprTokStar, text: "*", off: i})
			i++
		case c == '+':
			p.toks = append(p.toks, exprToken{kind: exprTokPlus, text: "+", off: i})
			i++
		case c == '<' || c == '>' || c == '=' || c == '!':
			op := string(c)
			if i+1 < len(s) && s[i+1] == '=' {
				op += "="
			}
			switch op {
			case "=":
				return &ExprError{Col: p.col(i), Msg: `"=" is not an operator`, Hint: "write == to compare"}
			case "!":
				return &ExprError{Col: p.col(i), Msg: `"!" is not an operator`, Hint: "write not, or != to compare"}
			}
			p.toks = append(p.toks, exprToken{kind: exprTokOp, text: op, off: i})
			i += len(op)
		case c == '&' || c == '|':
			word := "and"
			if c == '|' {
				word = "or"
			}
			return &ExprError{Col: p.col(i), Msg: fmt.Sprintf("%q is not an operator", string(c)), Hint: "write " + word}
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return &ExprError{Col: p.col(i), Msg: fmt.Sprintf("unexpected character %q", r)}
		}
	}
	p.toks = append(p.toks, exprToken{kind: exprTokEOF, off: len(s)})
	return nil
}

// --- parser ----------------------------------------------------------------

func (p *exprParser) peek() exprToken { return p.toks[p.pos] }

func (p *exprParser) peekAt(n int) exprToken {
	if p.pos+n < len(p.toks) {
		return p.toks[p.pos+n]
	}
	return p.toks[len(p.toks)-1]
}

func (p *exprParser) next() exprToken {
	t := p.toks[p.pos]
	if t.kind != exprTokEOF {
		p.pos++
	}
	return t
}

// exprKeywords cannot be metric names.
var exprKeywords = map[string]bool{"and": true, "or": true, "not": true, "contains": true, "true": true, "false": true}

func (p *exprParser) parseOr() (Expr, error) {
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peek().is("or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &exprLogic{op: "or", l: l, r: r}
	}
	return l, nil
}

func (p *exprParser) parseAnd() (Expr, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.peek().is("and") {
		p.next()
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = &exprLogic{op: "and", l: l, r: r}
	}
	return l, nil
}

func (p *exprParser) parseUnary() (Expr, error) {
	t := p.peek()
	if (t.is("not") || t.kind == exprTokLParen) && p.depth >= MaxExprDepth {
		return nil, p.errAt(t, fmt.Sprintf("nested more than %d deep", MaxExprDepth), "split the expression into several hypotheses")
	}
	p.depth++
	defer func() { p.depth-- }()
	switch {
	case t.is("not"):
		p.next()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &exprNot{x: x}, nil
	case t.kind == exprTokLParen:
		p.next()
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.peek(); c.kind != exprTokRParen {
			return nil, p.errAt(c, fmt.Sprintf("expected ) but found %s", c.describe()), fmt.Sprintf("the ( at column %d is not closed", p.col(t.off)))
		}
		p.next()
		return &exprParen{x: x}, nil
	case t.kind == exprTokName && !exprKeywords[t.text]:
		return p.parseTest()
	case t.kind == exprTokEOF:
		return nil, p.errAt(t, "expected a metric but the expression ends", "")
	}
	return nil, p.errAt(t, fmt.Sprintf("expected a metric but found %s", t.describe()), "")
}

// parseMetric reads a metric reference and checks it against the vocabulary.
func (p *exprParser) parseMetric() (*exprMetric, error) {
	t := p.next()
	if t.kind != exprTokName || exprKeywords[t.text] {
		return nil, p.errAt(t, fmt.Sprintf("expected a metric but found %s", t.describe()), "")
	}
	m := &exprMetric{written: t.text, col: p.col(t.off)}
	m.phase, m.name = SplitPhase(t.text)
	info, ok := p.vocab.Lookup(m.name)
	if !ok {
		return nil, p.errAt(t, fmt.Sprintf("unknown metric %s", m.name), p.unknownHint(m.name))
	}
	m.info = info
	if p.peek().kind == exprTokLParen {
		open := p.next()
		if info.Arg == "" {
			return nil, p.errAt(open, fmt.Sprintf("%s takes no argument", m.name), "")
		}
		a := p.next()
		if a.kind != exprTokName && a.kind != exprTokString {
			return nil, p.errAt(a, fmt.Sprintf("expected the %s argument of %s but found %s", info.Arg, m.name, a.describe()), "write e.g. "+m.name+"(order.PlaceOrder)")
		}
		if a.text == "" {
			return nil, p.errAt(a, fmt.Sprintf("empty %s argument of %s", info.Arg, m.name), "write e.g. "+m.name+"(order.PlaceOrder)")
		}
		m.arg = a.text
		if c := p.next(); c.kind != exprTokRParen {
			return nil, p.errAt(c, fmt.Sprintf("expected ) but found %s", c.describe()), fmt.Sprintf("%s takes one argument", m.name))
		}
	} else if info.Arg != "" {
		return nil, p.errAt(t, fmt.Sprintf("%s needs an argument", m.name), fmt.Sprintf("write e.g. %s(order.PlaceOrder)", m.name))
	}
	return m, nil
}

// unknownHint is the hint for an unknown metric: close names, else the
// metrics of its family, else where the list is.
func (p *exprParser) unknownHint(name string) string {
	similar, family := p.vocab.Near(name)
	if len(similar) > 0 {
		return "did you mean " + exprOrList(similar) + "?"
	}
	if len(family) > 0 {
		return "known: " + strings.Join(family, ", ")
	}
	return "the metrics are listed in docs/experiments.md"
}

func exprOrList(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

func (p *exprParser) parseTest() (Expr, error) {
	m, err := p.parseMetric()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	typ := m.info.Type
	switch {
	case t.kind == exprTokOp:
		p.next()
		return p.parseComparison(m, t)
	case t.is("contains"), t.is("not") && p.peekAt(1).is("contains"):
		neg := t.is("not")
		p.next()
		if neg {
			p.next()
		}
		if typ != TypeSet {
			return nil, p.errAt(t, fmt.Sprintf("%s is a %s: contains needs a set", m.name, exprTypeNoun(typ)), "")
		}
		v := p.next()
		if v.kind != exprTokName && v.kind != exprTokString || v.text == "" {
			return nil, p.errAt(v, fmt.Sprintf("expected a name after contains but found %s", v.describe()), "write e.g. contains user.GetUser")
		}
		return &exprContains{m: m, neg: neg, value: v.text}, nil
	}
	if typ != TypeBool {
		return nil, &ExprError{Col: m.col, Msg: fmt.Sprintf("%s is a %s: compare it with something", m.name, exprTypeNoun(typ)), Hint: "write e.g. " + exprExample(m)}
	}
	return &exprTruth{m: m}, nil
}

func exprTypeNoun(t MetricType) string {
	switch t {
	case TypeBool:
		return "boolean"
	}
	return string(t)
}

// exprExample is a correct comparison for the metric, for hints.
func exprExample(m *exprMetric) string {
	n := m.String()
	switch m.info.Type {
	case TypeDuration:
		return n + " < 150ms"
	case TypeRatio:
		return n + " >= 99%"
	case TypeCount:
		return n + " == 0"
	case TypeRate:
		return n + " >= 45/s"
	case TypeNumber:
		return n + " <= 1.5"
	case TypeString:
		return n + " == payment"
	case TypeSet:
		return n + " contains user.GetUser"
	}
	return n + " or not " + n
}

func (p *exprParser) parseComparison(m *exprMetric, op exprToken) (Expr, error) {
	typ := m.info.Type
	c := &exprCompare{m: m, op: op.text}
	switch typ {
	case TypeSet:
		return nil, p.errAt(op, fmt.Sprintf("%s is a set: %s does not apply", m.name, op.text), "write e.g. "+exprExample(m))
	case TypeBool, TypeString:
		if op.text != "==" && op.text != "!=" {
			return nil, p.errAt(op, fmt.Sprintf("%s is a %s: %s does not apply", m.name, exprTypeNoun(typ), op.text), "write == or !=")
		}
	}
	v := p.next()
	switch v.kind {
	case exprTokNumber:
		if p.peek().kind == exprTokStar && typ.numeric() {
			p.next()
			return p.parseScaled(c, v)
		}
		lit, err := p.numberLiteral(m, v)
		if err != nil {
			return nil, err
		}
		c.lit = lit
		return c, nil
	case exprTokString:
		if typ != TypeString {
			return nil, p.errAt(v, fmt.Sprintf("%s is a %s: a quoted string does not apply", m.name, exprTypeNoun(typ)), "write e.g. "+exprExample(m))
		}
		c.lit = &exprLiteral{text: quoteLiteral(v.text), str: v.text, kind: KindString}
		return c, nil
	case exprTokName:
		switch {
		case typ == TypeBool:
			if v.text != "true" && v.text != "false" {
				return nil, p.errAt(v, fmt.Sprintf("%s is a boolean: compare it with true or false", m.name), "or write it bare: "+m.String())
			}
			c.lit = &exprLiteral{text: v.text, b: v.text == "true", kind: KindBool}
			return c, nil
		case typ == TypeString:
			if exprKeywords[v.text] {
				return nil, p.errAt(v, fmt.Sprintf("%s is a keyword", v.text), "quote it: '"+v.text+"'")
			}
			c.lit = &exprLiteral{text: v.text, str: v.text, kind: KindString}
			return c, nil
		case exprKeywords[v.text]:
			return nil, p.errAt(v, fmt.Sprintf("expected a value but found %s", v.describe()), "write e.g. "+exprExample(m))
		}
		p.pos--
		return p.parseScaled(c, exprToken{})
	case exprTokEOF:
		return nil, p.errAt(v, fmt.Sprintf("expected a value after %s but the expression ends", op.text), "write e.g. "+exprExample(m))
	}
	return nil, p.errAt(v, fmt.Sprintf("expected a value but found %s", v.describe()), "write e.g. "+exprExample(m))
}

// parseScaled reads the metric of a right-hand side [NUMBER "*"] metric;
// factor is the number token, or the zero token when there is none.
func (p *exprParser) parseScaled(c *exprCompare, factor exprToken) (Expr, error) {
	m := c.m
	c.factor = 1
	if factor.kind == exprTokNumber {
		f, err := strconv.ParseFloat(factor.text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, p.errAt(factor, fmt.Sprintf("%s is not a plain number", strconv.Quote(factor.text)), "a factor is written e.g. 2 * before.order.latency.p99")
		}
		c.factor, c.factorText = f, factor.text
	}
	if !m.info.Type.numeric() {
		return nil, p.errAt(p.peek(), fmt.Sprintf("%s is a %s: it cannot be compared with another metric", m.name, exprTypeNoun(m.info.Type)), "")
	}
	r, err := p.parseMetric()
	if err != nil {
		return nil, err
	}
	if r.info.Type != m.info.Type {
		return nil, &ExprError{Col: r.col, Msg: fmt.Sprintf("%s is a %s but %s is a %s", m.name, m.info.Type, r.name, r.info.Type), Hint: "compare metrics of one type"}
	}
	c.rhs = r
	if p.peek().kind == exprTokPlus {
		p.next()
		v := p.next()
		if v.kind != exprTokNumber {
			return nil, p.errAt(v, fmt.Sprintf("expected a value after + but found %s", v.describe()), "an offset is written e.g. before.order.latency.p99 + 200ms")
		}
		lit, err := p.numberLiteral(m, v)
		if err != nil {
			return nil, err
		}
		c.offset = lit
	}
	return c, nil
}

// numberLiteral classifies a number token and checks it against the
// metric's type.
func (p *exprParser) numberLiteral(m *exprMetric, t exprToken) (*exprLiteral, error) {
	text := t.text
	lit := &exprLiteral{text: text, kind: KindNumber}
	var form string // plain, percent, duration, rate
	switch {
	case strings.HasSuffix(text, "%"):
		f, err := strconv.ParseFloat(strings.TrimSuffix(text, "%"), 64)
		if err != nil {
			return nil, p.errAt(t, fmt.Sprintf("%s is not a number", strconv.Quote(text)), "write a percentage as e.g. 99.5%")
		}
		lit.num, form = f/100, "percent"
	case strings.Contains(text, "/"):
		num, unit, _ := strings.Cut(text, "/")
		f, err := strconv.ParseFloat(num, 64)
		per := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
		if err != nil || per == 0 {
			return nil, p.errAt(t, fmt.Sprintf("%s is not a rate", strconv.Quote(text)), "write e.g. 45/s or 2700/m")
		}
		lit.num, form = f/per, "rate"
	default:
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			lit.num, form = f, "plain"
		} else if d, err := time.ParseDuration(strings.ReplaceAll(text, "µ", "u")); err == nil {
			lit.num, form = d.Seconds(), "duration"
		} else {
			return nil, p.errAt(t, fmt.Sprintf("%s is not a number or a duration", strconv.Quote(text)), "write e.g. 0.5, 99%, 150ms or 45/s")
		}
	}
	if math.IsInf(lit.num, 0) || math.IsNaN(lit.num) {
		return nil, p.errAt(t, fmt.Sprintf("%s is out of range", strconv.Quote(text)), "")
	}
	name := m.name
	bad := func(msg string) (*exprLiteral, error) { return nil, p.errAt(t, msg, "") }
	switch m.info.Type {
	case TypeDuration:
		switch {
		case form == "duration", form == "plain" && lit.num == 0:
		case form == "plain":
			return bad(fmt.Sprintf("%s is a duration: write %sms", name, text))
		default:
			return bad(fmt.Sprintf("%s is a duration: write e.g. 150ms", name))
		}
	case TypeRatio:
		switch {
		case form == "percent":
			if lit.num < 0 || lit.num > 1 {
				return bad(fmt.Sprintf("%s is a ratio: %s is not between 0%% and 100%%", name, text))
			}
		case form == "plain" && lit.num >= 0 && lit.num <= 1:
		case form == "plain" && lit.num > 1 && lit.num <= 100:
			return bad(fmt.Sprintf("%s is a ratio: write %s%% or %s", name, text, strconv.FormatFloat(lit.num/100, 'f', -1, 64)))
		default:
			return bad(fmt.Sprintf("%s is a ratio: write e.g. 99%% or 0.99", name))
		}
	case TypeCount:
		if form != "plain" {
			return bad(fmt.Sprintf("%s is a count: write a number, e.g. 10", name))
		}
	case TypeRate:
		if form != "plain" && form != "rate" {
			return bad(fmt.Sprintf("%s is a rate: write e.g. 45/s", name))
		}
	case TypeNumber:
		if form != "plain" {
			return bad(fmt.Sprintf("%s is a number: write e.g. 1.5", name))
		}
	case TypeBool:
		return bad(fmt.Sprintf("%s is a boolean: compare it with true or false", name))
	case TypeString:
		return bad(fmt.Sprintf("%s is a string: write a name, e.g. payment", name))
	}
	return lit, nil
}

// --- syntax tree -------------------------------------------------------------

type exprMetric struct {
	written string // as written, with any phase prefix
	phase   string
	name    string // without phase prefix
	arg     string
	info    MetricInfo
	col     int
}

func (m *exprMetric) String() string {
	if m.info.Arg == "" {
		return m.written
	}
	arg := m.arg
	if !exprPlainName(arg) {
		arg = strconv.Quote(arg)
	}
	return m.written + "(" + arg + ")"
}

// exprPlainName reports whether s lexes as one name token.
func exprPlainName(s string) bool {
	if s == "" || !exprIsLetter(s[0]) || exprKeywords[s] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !exprIsLetter(c) && !exprIsDigit(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

type exprLiteral struct {
	text string
	kind ValueKind
	num  float64
	str  string
	b    bool
}

// exprCompare is metric OP literal, or metric OP [factor *] metric
// [+ offset].
type exprCompare struct {
	m          *exprMetric
	op         string
	lit        *exprLiteral
	rhs        *exprMetric
	factor     float64
	factorText string
	offset     *exprLiteral // nil: none
}

func (c *exprCompare) String() string {
	r := ""
	switch {
	case c.lit != nil:
		r = c.lit.text
	case c.factorText != "":
		r = c.factorText + " * " + c.rhs.String()
	default:
		r = c.rhs.String()
	}
	if c.offset != nil {
		r += " + " + c.offset.text
	}
	return c.m.String() + " " + c.op + " " + r
}

func (c *exprCompare) Metrics() []string {
	if c.rhs != nil {
		return exprUnique([]string{c.m.written, c.rhs.written})
	}
	return []string{c.m.written}
}

// exprContains is metric [not] contains value.
type exprContains struct {
	m     *exprMetric
	neg   bool
	value string
}

func (c *exprContains) String() string {
	v := c.value
	if !exprPlainName(v) {
		v = strconv.Quote(v)
	}
	if c.neg {
		return c.m.String() + " not contains " + v
	}
	return c.m.String() + " contains " + v
}

func (c *exprContains) Metrics() []string { return []string{c.m.written} }

// exprTruth is a bare boolean metric.
type exprTruth struct{ m *exprMetric }

func (t *exprTruth) String() string    { return t.m.String() }
func (t *exprTruth) Metrics() []string { return []string{t.m.written} }

type exprNot struct{ x Expr }

func (n *exprNot) String() string    { return "not " + n.x.String() }
func (n *exprNot) Metrics() []string { return n.x.Metrics() }

type exprParen struct{ x Expr }

func (p *exprParen) String() string    { return "(" + p.x.String() + ")" }
func (p *exprParen) Metrics() []string { return p.x.Metrics() }

type exprLogic struct {
	op   string // and, or
	l, r Expr
}

func (l *exprLogic) String() string    { return l.l.String() + " " + l.op + " " + l.r.String() }
func (l *exprLogic) Metrics() []string { return exprUnique(append(l.l.Metrics(), l.r.Metrics()...)) }

func exprUnique(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// quoteLiteral writes a string literal as the lexer reads it back: between
// double quotes, or single quotes when it holds a double quote (strings have
// no escapes, so a literal never holds both).
func quoteLiteral(s string) string {
	if strings.Contains(s, `"`) {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}
