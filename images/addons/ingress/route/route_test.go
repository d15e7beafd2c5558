package route

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

type regexpT = regexp.Regexp

var tlsState tls.ConnectionState

func req(method, target string, hdr ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func act(name string) *Action {
	return &Action{Owner: name, Backends: []*Backend{{Name: name, Weight: 1, Addrs: []string{"127.0.0.1:1"}}}}
}

func owner(a *Action) string {
	if a == nil {
		return "<none>"
	}
	return a.Owner
}

func TestPrefixMatch(t *testing.T) {
	cases := []struct {
		prefix, path string
		want         bool
	}{
		{"/", "/anything", true},
		{"/", "/", true},
		{"/foo", "/foo", true},
		{"/foo", "/foo/", true},
		{"/foo", "/foo/bar", true},
		{"/foo", "/foobar", false},
		{"/foo/", "/foo", true},
		{"/foo/", "/foo/bar", true},
		{"/foo/", "/foobar", false},
		{"/aaa/bbb", "/aaa/bbbxyz", false},
		{"/aaa/bbb", "/aaa/bbb/ccc", true},
		{"/aaa/bbb/", "/aaa/bbb", true},
		{"/foo", "/", false},
		{"/foo", "/fo", false},
	}
	for _, c := range cases {
		if got := PrefixMatch(c.prefix, c.path); got != c.want {
			t.Errorf("PrefixMatch(%q, %q) = %v, want %v", c.prefix, c.path, got, c.want)
		}
	}
}

func ingressRule(kind PathKind, path, name string, created time.Time) *Rule {
	return &Rule{PathKind: kind, Path: path, Owner: name, Created: created, Action: act(name)}
}

func TestIngressPrecedence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := NewServer(80)
	s.AddIngress("app.example.com", ingressRule(PathPrefix, "/", "exact-root", t0))
	s.AddIngress("app.example.com", ingressRule(PathPrefix, "/api", "exact-api", t0))
	s.AddIngress("app.example.com", ingressRule(PathPrefix, "/api/v1", "exact-api-v1", t0))
	s.AddIngress("app.example.com", ingressRule(PathExact, "/api", "exact-api-exact", t0.Add(time.Second)))
	s.AddIngress("*.example.com", ingressRule(PathPrefix, "/", "wild-root", t0))
	s.AddIngress("*.example.com", ingressRule(PathPrefix, "/only-wild", "wild-only", t0))
	s.AddIngress("", ingressRule(PathPrefix, "/nohost", "nohost", t0))
	// The same path twice: the older Ingress wins.
	s.AddIngress("dup.example.org", ingressRule(PathPrefix, "/", "dup-newer", t0.Add(time.Hour)))
	s.AddIngress("dup.example.org", ingressRule(PathPrefix, "/", "dup-older", t0))
	s.IngressDefault = act("default")
	s.Sort()

	cases := []struct{ host, path, want string }{
		{"app.example.com", "/", "exact-root"},
		{"app.example.com", "/api", "exact-api-exact"},
		{"app.example.com", "/api/", "exact-api"},
		{"app.example.com", "/api/x", "exact-api"},
		{"app.example.com", "/apix", "exact-root"},
		{"app.example.com", "/api/v1/users", "exact-api-v1"},
		{"APP.Example.com:8080", "/api/v1", "exact-api-v1"},
		{"app.example.com.", "/api/v1", "exact-api-v1"},
		{"other.example.com", "/", "wild-root"},
		// The wildcard matches exactly one label.
		{"a.b.example.com", "/", "default"},
		{"example.com", "/", "default"},
		// Host with no path match falls through to less specific buckets.
		{"app.example.com", "/only-wild", "exact-root"},
		{"x.example.com", "/only-wild/y", "wild-only"},
		{"unknown.test", "/nohost/a", "nohost"},
		{"unknown.test", "/", "default"},
		{"dup.example.org", "/", "dup-older"},
	}
	for _, c := range cases {
		r := req("GET", "http://"+c.host+c.path)
		r.Host = c.host
		if got := owner(s.Lookup(r)); got != c.want {
			t.Errorf("%s%s: got %s, want %s", c.host, c.path, got, c.want)
		}
	}

	s.IngressDefault = nil
	r := req("GET", "http://a.b.example.com/")
	if a := s.Lookup(r); a != nil {
		t.Errorf("no match should be nil, got %s", a.Owner)
	}
}

func gwRule(kind PathKind, path, name string, created time.Time) *Rule {
	return &Rule{PathKind: kind, Path: path, Owner: name, Created: created, Action: act(name)}
}

func TestGatewayPrecedence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := NewServer(80)
	add := func(host string, r *Rule) { s.AddGateway(host, r) }
	add("gw.example.com", gwRule(PathPrefix, "/", "root", t0))
	add("gw.example.com", gwRule(PathPrefix, "/a", "prefix-a", t0))
	add("gw.example.com", gwRule(PathPrefix, "/a/b", "prefix-ab", t0))
	add("gw.example.com", gwRule(PathExact, "/a", "exact-a", t0))
	m := gwRule(PathPrefix, "/m", "method", t0)
	m.Method = "POST"
	add("gw.example.com", m)
	add("gw.example.com", gwRule(PathPrefix, "/m", "no-method", t0))
	h1 := gwRule(PathPrefix, "/h", "one-header", t0)
	h1.Headers = []StringMatch{{Name: "X-A", Value: "1"}}
	h2 := gwRule(PathPrefix, "/h", "two-headers", t0)
	h2.Headers = []StringMatch{{Name: "x-a", Value: "1"}, {Name: "X-B", Value: "2"}}
	add("gw.example.com", h1)
	add("gw.example.com", h2)
	q := gwRule(PathPrefix, "/q", "query", t0)
	q.Query = []StringMatch{{Name: "v", Value: "2"}}
	add("gw.example.com", q)
	add("gw.example.com", gwRule(PathPrefix, "/q", "no-query", t0))
	// Same match: the older route wins, then the name.
	add("gw.example.com", gwRule(PathPrefix, "/t", "t-newer", t0.Add(time.Minute)))
	add("gw.example.com", gwRule(PathPrefix, "/t", "t-older-b", t0))
	add("gw.example.com", gwRule(PathPrefix, "/t", "t-older-a", t0))
	re := gwRule(PathPrefix, "", "regex", t0)
	if err := re.SetPathRegex(`/re/[0-9]+`); err != nil {
		t.Fatal(err)
	}
	add("gw.example.com", re)
	hr := gwRule(PathPrefix, "/hr", "header-regex", t0)
	hr.Headers = []StringMatch{{Name: "X-Ver", Regex: mustRe(t, `v[0-9]+`)}}
	add("gw.example.com", hr)
	// Wildcards: any number of labels; the longest suffix first.
	add("*.example.com", gwRule(PathPrefix, "/", "wild", t0))
	add("*.deep.example.com", gwRule(PathPrefix, "/", "wild-deep", t0))
	add("", gwRule(PathPrefix, "/", "catch-all", t0))
	s.Sort()

	cases := []struct {
		method, host, target string
		hdr                  []string
		want                 string
	}{
		{"GET", "gw.example.com", "/", nil, "root"},
		{"GET", "gw.example.com", "/a", nil, "exact-a"},
		{"GET", "gw.example.com", "/a/", nil, "prefix-a"},
		{"GET", "gw.example.com", "/a/b/c", nil, "prefix-ab"},
		{"GET", "gw.example.com", "/ab", nil, "root"},
		{"POST", "gw.example.com", "/m", nil, "method"},
		{"GET", "gw.example.com", "/m", nil, "no-method"},
		{"GET", "gw.example.com", "/h", []string{"X-A", "1", "X-B", "2"}, "two-headers"},
		{"GET", "gw.example.com", "/h", []string{"X-A", "1"}, "one-header"},
		{"GET", "gw.example.com", "/h", []string{"X-A", "2"}, "root"},
		{"GET", "gw.example.com", "/q?v=2", nil, "query"},
		{"GET", "gw.example.com", "/q?v=3", nil, "no-query"},
		{"GET", "gw.example.com", "/q?v=2&v=3", nil, "query"},
		{"GET", "gw.example.com", "/t", nil, "t-older-a"},
		{"GET", "gw.example.com", "/re/42", nil, "regex"},
		{"GET", "gw.example.com", "/re/x", nil, "root"},
		{"GET", "gw.example.com", "/hr", []string{"X-Ver", "v12"}, "header-regex"},
		{"GET", "gw.example.com", "/hr", []string{"X-Ver", "xv12"}, "root"},
		{"GET", "x.example.com", "/", nil, "wild"},
		{"GET", "a.b.example.com", "/", nil, "wild"},
		{"GET", "x.deep.example.com", "/", nil, "wild-deep"},
		{"GET", "deep.example.com", "/", nil, "wild"},
		{"GET", "example.com", "/", nil, "catch-all"},
		{"GET", "elsewhere.test", "/", nil, "catch-all"},
	}
	for _, c := range cases {
		r := req(c.method, "http://"+c.host+c.target, c.hdr...)
		if got := owner(s.Lookup(r)); got != c.want {
			t.Errorf("%s %s%s %v: got %s, want %s", c.method, c.host, c.target, c.hdr, got, c.want)
		}
	}
}

func mustRe(t *testing.T, expr string) *regexpT {
	t.Helper()
	re, err := CompileRegex(expr)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

// Gateway rules for a host they name come before Ingress rules; Gateway
// catch-alls come after them.
func TestGatewayBeforeIngress(t *testing.T) {
	s := NewServer(80)
	s.AddIngress("both.test", ingressRule(PathPrefix, "/", "ingress-both", time.Time{}))
	s.AddGateway("both.test", gwRule(PathPrefix, "/gw", "gw-both", time.Time{}))
	s.AddIngress("ing.test", ingressRule(PathPrefix, "/", "ingress-only", time.Time{}))
	s.AddGateway("", gwRule(PathPrefix, "/", "gw-any", time.Time{}))
	s.Sort()
	for _, c := range []struct{ host, path, want string }{
		{"both.test", "/gw/x", "gw-both"},
		{"both.test", "/other", "ingress-both"},
		{"ing.test", "/", "ingress-only"},
		{"none.test", "/", "gw-any"},
	} {
		if got := owner(s.Lookup(req("GET", "http://"+c.host+c.path))); got != c.want {
			t.Errorf("%s%s: got %s, want %s", c.host, c.path, got, c.want)
		}
	}
}

func TestWeights(t *testing.T) {
	a := &Action{Backends: []*Backend{{Name: "a", Weight: 1}, {Name: "zero", Weight: 0}, {Name: "b", Weight: 3}}}
	counts := map[string]int{}
	for n := 0; n < 4; n++ {
		counts[a.Pick(func(int) int { return n }).Name]++
	}
	if counts["a"] != 1 || counts["b"] != 3 || counts["zero"] != 0 {
		t.Errorf("weights 1:0:3 over 4 draws: %v", counts)
	}
	// Random draws stay within the weights' shares.
	counts = map[string]int{}
	for n := 0; n < 4000; n++ {
		counts[a.Pick(nil).Name]++
	}
	if counts["zero"] != 0 || counts["b"] < 2700 || counts["b"] > 3300 {
		t.Errorf("random weights 1:0:3: %v", counts)
	}
	if b := (&Action{Backends: []*Backend{{Weight: 0}, {Weight: 0}}}).Pick(nil); b != nil {
		t.Errorf("all weights 0: got a backend")
	}
	if b := (&Action{Backends: []*Backend{{Weight: 0}}}).Pick(nil); b != nil {
		t.Errorf("single weight 0: got a backend")
	}
}

func TestReplacePrefix(t *testing.T) {
	cases := []struct{ path, prefix, repl, want string }{
		{"/prefix/one/two", "/prefix/one", "/one", "/one/two"},
		{"/prefix/one", "/prefix/one", "/one", "/one"},
		{"/prefix/one/", "/prefix/one", "/one", "/one/"},
		{"/strip-prefix/three", "/strip-prefix", "/", "/three"},
		{"/strip-prefix", "/strip-prefix", "/", "/"},
		{"/original-prefix/lemon", "/original-prefix", "/replacement-prefix", "/replacement-prefix/lemon"},
		{"/original-prefix/lemon", "/original-prefix/", "/replacement-prefix/", "/replacement-prefix/lemon"},
		{"/x", "/", "/new", "/new/x"},
		{"/", "/", "/new", "/new"},
	}
	for _, c := range cases {
		if got := ReplacePrefix(c.path, c.prefix, c.repl); got != c.want {
			t.Errorf("ReplacePrefix(%q, %q, %q) = %q, want %q", c.path, c.prefix, c.repl, got, c.want)
		}
	}
}

func TestRedirectLocation(t *testing.T) {
	full := "/full"
	repl := "/new"
	cases := []struct {
		name   string
		rd     Redirect
		target string
		tls    bool
		lport  int
		want   string
	}{
		{"scheme https: well-known port omitted", Redirect{Scheme: "https"}, "http://a.test:8080/p?q=1", false, 80, "https://a.test/p?q=1"},
		{"hostname only: listener port (well-known)", Redirect{Hostname: "b.test"}, "http://a.test/p", false, 80, "http://b.test/p"},
		{"hostname only: other listener port", Redirect{Hostname: "b.test"}, "http://a.test/p", false, 8080, "http://b.test:8080/p"},
		{"explicit port", Redirect{Port: 8443, Scheme: "https"}, "http://a.test/p", false, 80, "https://a.test:8443/p"},
		{"explicit well-known port", Redirect{Port: 443, Scheme: "https"}, "http://a.test/p", false, 80, "https://a.test/p"},
		{"keeps https", Redirect{Hostname: "c.test"}, "https://a.test/p", true, 443, "https://c.test/p"},
		{"full path", Redirect{Path: &PathModifier{FullPath: &full}}, "http://a.test/p/q", false, 80, "http://a.test/full"},
		{"prefix path", Redirect{Path: &PathModifier{PrefixReplace: &repl, MatchedPrefix: "/p"}}, "http://a.test/p/q?x=y", false, 80, "http://a.test/new/q?x=y"},
	}
	for _, c := range cases {
		r := req("GET", c.target)
		if c.tls {
			r.TLS = &tlsState
		}
		if got := c.rd.Location(r, c.lport, nil); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestRedirectLocationPublicPorts(t *testing.T) {
	// a host serving listener 80 at 8080 and 443 at 8443 (a user who may not bind low ports)
	public := map[int]int{80: 8080, 443: 8443}
	repl := "/new"
	cases := []struct {
		name, target string
		rd           Redirect
		want         string
	}{
		{"path only: the port the client used", "http://gw.test:8080/old", Redirect{Path: &PathModifier{PrefixReplace: &repl, MatchedPrefix: "/old"}}, "http://gw.test:8080/new"},
		{"to https: its public port", "http://gw.test:8080/p", Redirect{Scheme: "https"}, "https://gw.test:8443/p"},
		{"explicit 443: its public port", "http://gw.test:8080/p", Redirect{Scheme: "https", Port: 443}, "https://gw.test:8443/p"},
		{"a port not served here is kept", "http://gw.test:8080/p", Redirect{Port: 9000}, "http://gw.test:9000/p"},
	}
	for _, c := range cases {
		if got := c.rd.Location(req("GET", c.target), 80, public); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	cases := map[string]string{
		"/public/../private": "/private",
		"/a/./b/":            "/a/b/",
		"//a//b":             "/a/b",
		"/a/b/..":            "/a",
		"/":                  "/",
		"/plain/path":        "/plain/path",
	}
	for in, want := range cases {
		r := req("GET", "http://h.test"+in)
		cleanPath(r)
		if r.URL.Path != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, r.URL.Path, want)
		}
	}
	// %2e is a dot once decoded: resolved the same
	r, _ := http.NewRequest("GET", "http://h.test/public/%2e%2e/private", nil)
	cleanPath(r)
	if r.URL.Path != "/private" || r.URL.RawPath != "" {
		t.Errorf("encoded dots: %q (raw %q)", r.URL.Path, r.URL.RawPath)
	}
}

func TestHeaderFilter(t *testing.T) {
	h := http.Header{"X-Keep": {"1"}, "X-Drop": {"1"}, "X-Set": {"old"}, "X-Add": {"a"}}
	f := &HeaderFilter{Set: [][2]string{{"x-set", "new"}}, Add: [][2]string{{"X-Add", "b"}}, Remove: []string{"x-drop"}}
	f.Apply(h)
	if h.Get("X-Set") != "new" || strings.Join(h.Values("X-Add"), ",") != "a,b" || h.Get("X-Drop") != "" || h.Get("X-Keep") != "1" {
		t.Errorf("headers after filter: %v", h)
	}
	var nilFilter *HeaderFilter
	nilFilter.Apply(h) // no panic
}

// A table with one HTTP server routing to the given actions by host.
func serve(t *testing.T, s *Server, accessLog ...bool) *httptest.Server {
	t.Helper()
	tables := &Tables{}
	tables.Store(&Table{HTTP: s, HTTPS: NewServer(443)})
	front := httptest.NewServer(NewHandler(tables, false, len(accessLog) > 0 && accessLog[0]))
	t.Cleanup(front.Close)
	return front
}

func get(t *testing.T, front *httptest.Server, host, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	r, _ := http.NewRequest("GET", front.URL+path, nil)
	r.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-Secret", "s")
		w.Header().Set("X-Backend", "b")
		io.WriteString(w, strings.Join([]string{
			"host=" + r.Host, "path=" + r.URL.Path, "query=" + r.URL.RawQuery,
			"xff=" + r.Header.Get("X-Forwarded-For"), "xfh=" + r.Header.Get("X-Forwarded-Host"),
			"xfp=" + r.Header.Get("X-Forwarded-Proto"), "added=" + r.Header.Get("X-Added"),
			"removed=" + r.Header.Get("X-Remove-Me"), "be=" + r.Header.Get("X-Backend-Filter"),
		}, "\n"))
	}))
	defer backend.Close()
	addr := backend.Listener.Addr().String()

	s := NewServer(80)
	s.AddIngress("plain.test", &Rule{PathKind: PathPrefix, Path: "/", Action: &Action{Owner: "plain",
		Backends: []*Backend{{Name: "be", Weight: 1, Addrs: []string{addr}}}}})
	full := "/rewritten"
	prefix := "/v2"
	s.AddGateway("gw.test", &Rule{PathKind: PathPrefix, Path: "/full", Action: &Action{Owner: "full",
		RewriteHost:     "internal.test",
		RewritePath:     &PathModifier{FullPath: &full},
		RequestHeaders:  &HeaderFilter{Set: [][2]string{{"X-Added", "yes"}}, Remove: []string{"X-Remove-Me"}},
		ResponseHeaders: &HeaderFilter{Add: [][2]string{{"X-Route", "r"}}, Remove: []string{"X-Backend-Secret"}},
		Backends: []*Backend{{Name: "be", Weight: 1, Addrs: []string{addr},
			RequestHeaders: &HeaderFilter{Set: [][2]string{{"X-Backend-Filter", "on"}}}}}}})
	s.AddGateway("gw.test", &Rule{PathKind: PathPrefix, Path: "/v1", Action: &Action{Owner: "prefix",
		RewritePath: &PathModifier{PrefixReplace: &prefix, MatchedPrefix: "/v1"},
		Backends:    []*Backend{{Name: "be", Weight: 1, Addrs: []string{addr}}}}})
	s.AddGateway("gw.test", &Rule{PathKind: PathPrefix, Path: "/redirect", Action: &Action{Owner: "redirect",
		Redirect: &Redirect{Scheme: "https", StatusCode: 301}}})
	s.AddGateway("gw.test", &Rule{PathKind: PathPrefix, Path: "/invalid", Action: &Action{Owner: "invalid",
		Backends: []*Backend{{Name: "bad", Weight: 1, Status: 500, Message: "500 bad backend"}}}})
	s.AddGateway("gw.test", &Rule{PathKind: PathPrefix, Path: "/noweight", Action: &Action{Owner: "noweight",
		Backends: []*Backend{{Name: "bad", Weight: 0, Addrs: []string{addr}}}}})
	s.AddIngress("missing.test", &Rule{PathKind: PathPrefix, Path: "/", Action: &Action{Owner: "missing",
		Backends: []*Backend{{Name: "ns/svc:80", Weight: 1, Status: 503, Message: "503 service unavailable: service ns/svc not found"}}}})
	s.AddIngress("empty.test", &Rule{PathKind: PathPrefix, Path: "/", Action: &Action{Owner: "empty",
		Backends: []*Backend{{Name: "ns/headless:80", Weight: 1}}}})
	s.AddIngress("down.test", &Rule{PathKind: PathPrefix, Path: "/", Action: &Action{Owner: "down",
		Backends: []*Backend{{Name: "ns/down:80", Weight: 1, Addrs: []string{closedAddr(t)}}}}})
	s.Sort()
	front := serve(t, s)

	resp, body := get(t, front, "plain.test", "/a/b?x=1")
	for _, want := range []string{"host=plain.test", "path=/a/b", "query=x=1", "xff=127.0.0.1", "xfh=plain.test", "xfp=http"} {
		if !strings.Contains(body, want) {
			t.Errorf("plain: %q lacks %q", body, want)
		}
	}
	if resp.StatusCode != 200 {
		t.Errorf("plain: status %d", resp.StatusCode)
	}

	resp, body = get(t, front, "gw.test", "/full/x", "X-Remove-Me", "1")
	for _, want := range []string{"host=internal.test", "path=/rewritten", "xfh=gw.test", "added=yes", "removed=\n", "be=on"} {
		if !strings.Contains(body, want) {
			t.Errorf("rewrite: %q lacks %q", body, want)
		}
	}
	if resp.Header.Get("X-Route") != "r" || resp.Header.Get("X-Backend-Secret") != "" || resp.Header.Get("X-Backend") != "b" {
		t.Errorf("response headers: %v", resp.Header)
	}

	_, body = get(t, front, "gw.test", "/v1/users")
	if !strings.Contains(body, "path=/v2/users") {
		t.Errorf("prefix rewrite: %q", body)
	}

	resp, _ = get(t, front, "gw.test:8080", "/redirect/x?y=z")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "https://gw.test/redirect/x?y=z" {
		t.Errorf("redirect: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	for _, c := range []struct {
		host, path string
		status     int
		body       string
	}{
		{"gw.test", "/invalid", 500, "500 bad backend"},
		{"gw.test", "/noweight", 500, "no backend with a weight"},
		{"missing.test", "/", 503, "service ns/svc not found"},
		{"empty.test", "/", 503, "no ready endpoint"},
		{"down.test", "/", 502, "not answering"},
		{"nothing.test", "/", 404, "404"},
	} {
		resp, body := get(t, front, c.host, c.path)
		if resp.StatusCode != c.status || !strings.Contains(body, c.body) {
			t.Errorf("%s%s: %d %q, want %d with %q", c.host, c.path, resp.StatusCode, body, c.status, c.body)
		}
	}
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// An Upgrade (WebSocket-style) request is passed through both ways, with
// and without the access log's response writer wrapper.
func TestUpgrade(t *testing.T) {
	for _, accessLog := range []bool{false, true} {
		testUpgrade(t, accessLog)
	}
}

func testUpgrade(t *testing.T, accessLog bool) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "no upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	}))
	defer backend.Close()
	s := NewServer(80)
	s.AddIngress("ws.test", &Rule{PathKind: PathPrefix, Path: "/", Action: &Action{Owner: "ws",
		Backends: []*Backend{{Name: "be", Weight: 1, Addrs: []string{backend.Listener.Addr().String()}}}}})
	s.Sort()
	front := serve(t, s, accessLog)
	u, _ := url.Parse(front.URL)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	io.WriteString(conn, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("got %q, %v", line, err)
	}
}
