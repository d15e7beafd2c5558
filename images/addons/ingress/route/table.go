// Package route is the data plane's routing table: which rule a request
// matches, and what is done with it. It knows nothing of Kubernetes; the
// controller translates Ingresses and HTTPRoutes into a Table.
//
// Lookup order for a request with host H on one server (HTTP or HTTPS):
//
//  1. Gateway rules for H exactly, then for wildcard hostnames that cover H
//     (the longest suffix first);
//  2. Ingress rules whose host is H, then the Ingress wildcard host covering H
//     (one label), then Ingress rules without a host;
//  3. Gateway rules attached without any hostname (catch-all listeners and
//     routes);
//  4. the Ingress default backend (spec.defaultBackend of the oldest served
//     Ingress that has one);
//  5. 404.
//
// Within each host bucket the first matching rule in precedence order wins
// (see sortGateway and sortIngress); when no rule of a bucket matches, the
// next bucket is tried.
package route

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

// PathKind is how a rule matches the request path.
type PathKind int

const (
	PathPrefix PathKind = iota // element-wise prefix; "/" matches everything
	PathExact
	PathRegex // the whole path matches the expression
)

// Source tells which API a rule comes from; it decides the precedence rules.
type Source int

const (
	FromIngress Source = iota
	FromGateway
)

// StringMatch matches a header or query parameter value.
type StringMatch struct {
	Name  string // header names are compared case-insensitively
	Value string
	Regex *regexp.Regexp // when set, Value is ignored and the whole value must match
}

func (m StringMatch) matches(v string, ok bool) bool {
	if !ok {
		return false
	}
	if m.Regex != nil {
		return m.Regex.MatchString(v)
	}
	return v == m.Value
}

// Rule is one match (path, method, headers, query) and its action.
type Rule struct {
	PathKind PathKind
	Path     string // for PathRegex, the expression's text (used for ordering)
	pathRe   *regexp.Regexp
	Method   string
	Headers  []StringMatch
	Query    []StringMatch

	Source Source
	// Ordering of equal matches: the older object first, then the name
	// (namespace/name), then the order in the object.
	Created time.Time
	Owner   string
	Index   int

	Action *Action
}

// CompileRegex anchors and compiles a full-match expression.
func CompileRegex(expr string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + expr + ")$")
}

// SetPathRegex makes the rule match paths with a regular expression.
func (r *Rule) SetPathRegex(expr string) error {
	re, err := CompileRegex(expr)
	if err != nil {
		return err
	}
	r.PathKind, r.Path, r.pathRe = PathRegex, expr, re
	return nil
}

// PrefixMatch reports whether path is under prefix, element by element: a
// trailing "/" of the prefix is ignored, "/foo" matches "/foo", "/foo/" and
// "/foo/bar" but not "/foobar".
func PrefixMatch(prefix, path string) bool {
	p := strings.TrimRight(prefix, "/")
	if p == "" {
		return true
	}
	if !strings.HasPrefix(path, p) {
		return false
	}
	return len(path) == len(p) || path[len(p)] == '/'
}

// Matches reports whether the request matches the rule.
func (r *Rule) Matches(req *http.Request) bool {
	path := req.URL.Path
	if path == "" {
		path = "/"
	}
	switch r.PathKind {
	case PathExact:
		if path != r.Path {
			return false
		}
	case PathPrefix:
		if !PrefixMatch(r.Path, path) {
			return false
		}
	case PathRegex:
		if r.pathRe == nil || !r.pathRe.MatchString(path) {
			return false
		}
	}
	if r.Method != "" && req.Method != r.Method {
		return false
	}
	for _, h := range r.Headers {
		var v string
		var ok bool
		if strings.EqualFold(h.Name, "host") {
			v, ok = req.Host, true
		} else {
			vals := req.Header.Values(h.Name)
			v, ok = strings.Join(vals, ","), len(vals) > 0
		}
		if !h.matches(v, ok) {
			return false
		}
	}
	if len(r.Query) > 0 {
		q := req.URL.Query()
		for _, m := range r.Query {
			vals, ok := q[m.Name]
			v := ""
			if ok && len(vals) > 0 {
				v = vals[0]
			}
			if !m.matches(v, ok) {
				return false
			}
		}
	}
	return true
}

// Bucket holds the rules of one host, in precedence order once sorted.
type Bucket struct {
	Rules []*Rule
}

func (b *Bucket) match(req *http.Request) *Rule {
	if b == nil {
		return nil
	}
	for _, r := range b.Rules {
		if r.Matches(req) {
			return r
		}
	}
	return nil
}

// pathRank orders path kinds for the Gateway API: Exact, then regular
// expressions, then prefixes.
func gatewayPathRank(k PathKind) int {
	switch k {
	case PathExact:
		return 0
	case PathRegex:
		return 1
	default:
		return 2
	}
}

func olderFirst(a, b *Rule) bool {
	if !a.Created.Equal(b.Created) {
		return a.Created.Before(b.Created)
	}
	if a.Owner != b.Owner {
		return a.Owner < b.Owner
	}
	return a.Index < b.Index
}

// gatewayLess is the HTTPRoute precedence: exact path, then the longest
// regular expression, then the longest prefix; then a method match, then
// the most header matches, then the most query parameter matches; then
// the oldest route, its namespace/name, and the rule's order.
func gatewayLess(a, b *Rule) bool {
	ra, rb := gatewayPathRank(a.PathKind), gatewayPathRank(b.PathKind)
	if ra != rb {
		return ra < rb
	}
	if len(a.Path) != len(b.Path) && a.PathKind != PathExact {
		return len(a.Path) > len(b.Path)
	}
	if (a.Method != "") != (b.Method != "") {
		return a.Method != ""
	}
	if len(a.Headers) != len(b.Headers) {
		return len(a.Headers) > len(b.Headers)
	}
	if len(a.Query) != len(b.Query) {
		return len(a.Query) > len(b.Query)
	}
	return olderFirst(a, b)
}

// ingressLess is the Ingress precedence: Exact before Prefix for the same
// path, the longest path first; then the oldest Ingress.
func ingressLess(a, b *Rule) bool {
	la, lb := len(strings.TrimRight(a.Path, "/")), len(strings.TrimRight(b.Path, "/"))
	if a.PathKind == PathExact {
		la = len(a.Path)
	}
	if b.PathKind == PathExact {
		lb = len(b.Path)
	}
	if la != lb {
		return la > lb
	}
	if a.PathKind != b.PathKind {
		return a.PathKind == PathExact
	}
	return olderFirst(a, b)
}

// Sort puts the bucket's rules in precedence order.
func (b *Bucket) Sort() {
	sort.SliceStable(b.Rules, func(i, j int) bool {
		a, c := b.Rules[i], b.Rules[j]
		if a.Source != c.Source {
			return a.Source == FromGateway
		}
		if a.Source == FromGateway {
			return gatewayLess(a, c)
		}
		return ingressLess(a, c)
	})
}

// Server is the routing table of one listener (plain HTTP or HTTPS).
type Server struct {
	// GatewayPort is the Gateway listener port this server stands for (80 or
	// 443 by default): redirects without a scheme or port use it.
	GatewayPort int

	GatewayExact    map[string]*Bucket // "app.example.com"
	GatewayWildcard map[string]*Bucket // "*.example.com" under "example.com": any number of labels
	GatewayAny      *Bucket
	IngressExact    map[string]*Bucket
	IngressWildcard map[string]*Bucket // "*.example.com" under "example.com": exactly one label
	IngressAny      *Bucket
	IngressDefault  *Action
}

// NewServer returns an empty server table.
func NewServer(gatewayPort int) *Server {
	return &Server{
		GatewayPort:     gatewayPort,
		GatewayExact:    map[string]*Bucket{},
		GatewayWildcard: map[string]*Bucket{},
		IngressExact:    map[string]*Bucket{},
		IngressWildcard: map[string]*Bucket{},
	}
}

func bucketFor(m map[string]*Bucket, key string) *Bucket {
	b := m[key]
	if b == nil {
		b = &Bucket{}
		m[key] = b
	}
	return b
}

// AddGateway adds a Gateway rule for hostname ("" or "*" for any host, "*.x"
// for a wildcard).
func (s *Server) AddGateway(hostname string, r *Rule) {
	r.Source = FromGateway
	if hostname == "*" {
		hostname = ""
	}
	addRule(&s.GatewayAny, s.GatewayWildcard, s.GatewayExact, hostname, r)
}

// AddIngress adds an Ingress rule for host ("" for any host).
func (s *Server) AddIngress(host string, r *Rule) {
	r.Source = FromIngress
	addRule(&s.IngressAny, s.IngressWildcard, s.IngressExact, host, r)
}

// addRule puts r in the bucket of host: any ("" ), a wildcard ("*.x", kept
// under "x"), or an exact name (lower case).
func addRule(anyHost **Bucket, wildcard, exact map[string]*Bucket, host string, r *Rule) {
	host = strings.ToLower(host)
	var b *Bucket
	switch {
	case host == "":
		if *anyHost == nil {
			*anyHost = &Bucket{}
		}
		b = *anyHost
	case strings.HasPrefix(host, "*."):
		b = bucketFor(wildcard, host[2:])
	default:
		b = bucketFor(exact, host)
	}
	b.Rules = append(b.Rules, r)
}

// Sort sorts every bucket; call it once all rules are added.
func (s *Server) Sort() {
	for _, m := range []map[string]*Bucket{s.GatewayExact, s.GatewayWildcard, s.IngressExact, s.IngressWildcard} {
		for _, b := range m {
			b.Sort()
		}
	}
	if s.GatewayAny != nil {
		s.GatewayAny.Sort()
	}
	if s.IngressAny != nil {
		s.IngressAny.Sort()
	}
}

// NormalizeHost lowercases a Host header and drops its port and a trailing dot.
func NormalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimPrefix(strings.TrimSuffix(h, "]"), "[")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// Lookup finds the rule for a request, or the Ingress default backend's
// action; nil when nothing matches.
func (s *Server) Lookup(req *http.Request) *Action {
	if s == nil {
		return nil
	}
	host := NormalizeHost(req.Host)
	if r := s.GatewayExact[host].match(req); r != nil {
		return r.Action
	}
	if len(s.GatewayWildcard) > 0 {
		for h := host; ; {
			i := strings.IndexByte(h, '.')
			if i < 0 {
				break
			}
			h = h[i+1:]
			if r := s.GatewayWildcard[h].match(req); r != nil {
				return r.Action
			}
		}
	}
	if r := s.IngressExact[host].match(req); r != nil {
		return r.Action
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if r := s.IngressWildcard[host[i+1:]].match(req); r != nil {
			return r.Action
		}
	}
	if r := s.IngressAny.match(req); r != nil {
		return r.Action
	}
	if r := s.GatewayAny.match(req); r != nil {
		return r.Action
	}
	return s.IngressDefault
}

// Table is the whole routing table, swapped atomically on every rebuild.
type Table struct {
	HTTP  *Server
	HTTPS *Server
}

// NewTable returns an empty table.
func NewTable(gatewayHTTPPort, gatewayHTTPSPort int) *Table {
	return &Table{HTTP: NewServer(gatewayHTTPPort), HTTPS: NewServer(gatewayHTTPSPort)}
}

// Sort sorts both servers' buckets.
func (t *Table) Sort() {
	t.HTTP.Sort()
	t.HTTPS.Sort()
}
