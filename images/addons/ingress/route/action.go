package route

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
)

// HeaderFilter sets, adds and removes headers (Gateway API
// RequestHeaderModifier / ResponseHeaderModifier).
type HeaderFilter struct {
	Set    [][2]string
	Add    [][2]string
	Remove []string
}

// Apply changes h.
func (f *HeaderFilter) Apply(h http.Header) {
	if f == nil {
		return
	}
	for _, kv := range f.Set {
		h.Set(kv[0], kv[1])
	}
	for _, kv := range f.Add {
		h.Add(kv[0], kv[1])
	}
	for _, name := range f.Remove {
		h.Del(name)
	}
}

// PathModifier rewrites a path: the whole of it, or the prefix the rule
// matched.
type PathModifier struct {
	FullPath      *string
	PrefixReplace *string // with MatchedPrefix
	MatchedPrefix string
}

// Apply returns the new path.
func (m *PathModifier) Apply(path string) string {
	if m == nil {
		return path
	}
	if m.FullPath != nil {
		return *m.FullPath
	}
	if m.PrefixReplace == nil {
		return path
	}
	return ReplacePrefix(path, m.MatchedPrefix, *m.PrefixReplace)
}

// ReplacePrefix replaces the element-wise prefix of path with repl, keeping
// exactly one "/" between the replacement and the rest.
func ReplacePrefix(path, prefix, repl string) string {
	p := strings.TrimRight(prefix, "/")
	if !PrefixMatch(p, path) {
		return path
	}
	rest := path[len(p):]
	if p == "" && rest == "/" {
		rest = "" // the prefix "/" matched all of "/"
	}
	var out string
	switch {
	case rest == "" || rest == "/":
		out = repl
		if rest == "/" && !strings.HasSuffix(out, "/") {
			out += "/"
		}
	default:
		out = strings.TrimRight(repl, "/") + rest
	}
	if out == "" {
		out = "/"
	}
	return out
}

// Redirect is a Gateway API RequestRedirect filter.
type Redirect struct {
	Scheme     string // "" keeps the request's
	Hostname   string // "" keeps the request's
	Port       int    // 0: derived as the spec says
	Path       *PathModifier
	StatusCode int // 301 or 302 (default 302)
}

// Location builds the redirect target for req, served on a listener whose
// Gateway port is listenerPort.
//
// public maps a listener's port to the port clients reach it at (a host
// that serves listener 80 at 8080): a Location names the port clients use.
func (rd *Redirect) Location(req *http.Request, listenerPort int, public map[int]int) string {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	if rd.Scheme != "" {
		scheme = rd.Scheme
	}
	host := rd.Hostname
	if host == "" {
		host = NormalizeHost(req.Host)
	}
	port := rd.Port
	if port == 0 {
		if rd.Scheme != "" {
			port = wellKnownPort(scheme)
		} else {
			port = listenerPort
		}
	}
	if p, ok := public[port]; ok {
		port = p
	}
	loc := scheme + "://" + bracketIPv6(host)
	if port != 0 && port != wellKnownPort(scheme) {
		loc += ":" + strconv.Itoa(port)
	}
	loc += rd.Path.Apply(pathOf(req))
	if req.URL.RawQuery != "" {
		loc += "?" + req.URL.RawQuery
	}
	return loc
}

func bracketIPv6(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

func wellKnownPort(scheme string) int {
	switch strings.ToLower(scheme) {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

func pathOf(req *http.Request) string {
	if req.URL.Path == "" {
		return "/"
	}
	return req.URL.Path
}

// Backend is one weighted destination. An invalid one (Status != 0) answers
// with that status.
type Backend struct {
	Name   string   // for logs and errors: namespace/service:port
	Addrs  []string // host:port, one chosen at random per request
	Weight int32

	Status  int
	Message string

	// Filters of a Gateway backendRef.
	RequestHeaders  *HeaderFilter
	ResponseHeaders *HeaderFilter
}

// Action is what is done with a matched request.
type Action struct {
	// Status, when not 0, is answered with Message (no backend).
	Status  int
	Message string

	Redirect        *Redirect
	RequestHeaders  *HeaderFilter
	ResponseHeaders *HeaderFilter
	RewriteHost     string
	RewritePath     *PathModifier

	Backends []*Backend

	// Owner names the object the action comes from, for access logs.
	Owner string
}

// Pick chooses a backend by weight; nil when every weight is 0 or there is
// none. intn is rand.IntN unless a test gives its own.
func (a *Action) Pick(intn func(int) int) *Backend {
	if len(a.Backends) == 1 {
		if a.Backends[0].Weight > 0 {
			return a.Backends[0]
		}
		return nil
	}
	total := 0
	for _, b := range a.Backends {
		if b.Weight > 0 {
			total += int(b.Weight)
		}
	}
	if total == 0 {
		return nil
	}
	if intn == nil {
		intn = rand.IntN
	}
	n := intn(total)
	for _, b := range a.Backends {
		if b.Weight <= 0 {
			continue
		}
		if n < int(b.Weight) {
			return b
		}
		n -= int(b.Weight)
	}
	return nil
}
