package route

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"
)

// Tables holds the current Table; readers never block.
type Tables struct {
	p atomic.Pointer[Table]
}

// Load returns the current table (nil before the first Store).
func (t *Tables) Load() *Table { return t.p.Load() }

// Store swaps in a new table.
func (t *Tables) Store(tb *Table) { t.p.Store(tb) }

// Handler serves one of the two servers (HTTP or HTTPS) of the current table.
type Handler struct {
	Tables    *Tables
	HTTPS     bool
	AccessLog bool
	// PublicPorts maps a listener port to the port clients reach it at
	// (redirects name the latter); a port not in it is its own.
	PublicPorts map[int]int
	proxy       *httputil.ReverseProxy
}

type ctxKey struct{}

type proxyState struct {
	target   string
	host     string // Host header sent upstream
	backend  *Backend
	action   *Action
	upstream int
}

// NewHandler makes a handler with its own reverse proxy and transport.
func NewHandler(tables *Tables, https, accessLog bool) *Handler {
	h := &Handler{Tables: tables, HTTPS: https, AccessLog: accessLog}
	transport := &http.Transport{
		Proxy: nil, // never a proxy from the environment
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          200,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			st := pr.In.Context().Value(ctxKey{}).(*proxyState)
			pr.SetURL(&url.URL{Scheme: "http", Host: st.target})
			pr.Out.Host = st.host
			pr.SetXForwarded()
			// SetXForwarded sets X-Forwarded-Host from the incoming Host,
			// which is what we want even when the host is rewritten.
		},
		Transport:     transport,
		FlushInterval: -1, // stream (server-sent events, long polls)
		ModifyResponse: func(resp *http.Response) error {
			st := resp.Request.Context().Value(ctxKey{}).(*proxyState)
			st.upstream = resp.StatusCode
			st.backend.ResponseHeaders.Apply(resp.Header)
			st.action.ResponseHeaders.Apply(resp.Header)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			st := r.Context().Value(ctxKey{}).(*proxyState)
			if errors.Is(err, context.Canceled) {
				return
			}
			log.Printf("proxy error: %s (%s): %v", st.backend.Name, st.target, err)
			http.Error(w, fmt.Sprintf("bad gateway: %s is not answering", st.backend.Name), http.StatusBadGateway)
		},
		ErrorLog: log.Default(),
	}
	return h
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush, Hijack (WebSocket) and
// deadlines of the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (h *Handler) server() *Server {
	t := h.Tables.Load()
	if t == nil {
		return nil
	}
	if h.HTTPS {
		return t.HTTPS
	}
	return t.HTTP
}

// ServeHTTP routes one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.AccessLog {
		h.serve(w, r)
		return
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	owner := h.serve(rec, r)
	status := rec.status
	if status == 0 && r.Header.Get("Upgrade") != "" {
		status = http.StatusSwitchingProtocols // the proxy wrote it on the hijacked connection
	}
	log.Printf("access %s %s %q %s %s %d %s %s", r.RemoteAddr, r.Method, r.Host, r.URL.RequestURI(), r.Proto,
		status, time.Since(start).Round(time.Microsecond), owner)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) string {
	cleanPath(r)
	srv := h.server()
	a := srv.Lookup(r)
	if a == nil {
		http.Error(w, "404 not found: no Ingress or HTTPRoute matches this host and path", http.StatusNotFound)
		return "-"
	}
	if a.Status != 0 {
		http.Error(w, a.Message, a.Status)
		return a.Owner
	}
	if a.Redirect != nil {
		a.ResponseHeaders.Apply(w.Header())
		code := a.Redirect.StatusCode
		if code == 0 {
			code = http.StatusFound
		}
		http.Redirect(w, r, a.Redirect.Location(r, srv.GatewayPort, h.PublicPorts), code)
		return a.Owner
	}
	b := a.Pick(nil)
	if b == nil {
		http.Error(w, "500 internal server error: the route has no backend with a weight", http.StatusInternalServerError)
		return a.Owner
	}
	if b.Status != 0 {
		http.Error(w, b.Message, b.Status)
		return a.Owner
	}
	if len(b.Addrs) == 0 {
		http.Error(w, fmt.Sprintf("503 service unavailable: %s has no ready endpoint", b.Name), http.StatusServiceUnavailable)
		return a.Owner
	}
	st := &proxyState{target: b.Addrs[0], host: r.Host, backend: b, action: a}
	if len(b.Addrs) > 1 {
		st.target = b.Addrs[rand.IntN(len(b.Addrs))]
	}
	out := r.Clone(context.WithValue(r.Context(), ctxKey{}, st))
	if a.RewriteHost != "" {
		st.host = a.RewriteHost
	}
	if a.RewritePath != nil {
		out.URL.Path = a.RewritePath.Apply(pathOf(r))
		out.URL.RawPath = ""
	}
	a.RequestHeaders.Apply(out.Header)
	b.RequestHeaders.Apply(out.Header)
	h.proxy.ServeHTTP(w, out)
	return a.Owner + " -> " + b.Name
}

// cleanPath resolves dot-segments and repeated slashes in the request's path
// (decoded: %2e is a dot), keeping a trailing slash, before any rule sees it:
// "/public/../private" is matched, and proxied, as "/private", so a backend
// that cleans paths never serves what the rules did not route to it.
func cleanPath(r *http.Request) {
	p := r.URL.Path
	if p == "" {
		return
	}
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	if c != p {
		r.URL.Path = c
		r.URL.RawPath = ""
	}
}
