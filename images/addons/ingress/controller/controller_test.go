package controller

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwlisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"

	"minilab/addons/ingress/certs"
	"minilab/addons/ingress/route"
)

const (
	ourIngress = "minilab.io/ingress-controller"
	ourGateway = "minilab.io/gateway-controller"
)

func indexer(objs ...runtime.Object) cache.Indexer {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		if err := idx.Add(o); err != nil {
			panic(err)
		}
	}
	return idx
}

// world is the cluster a test translates.
type world struct {
	ingresses, classes, services, slices, secrets, namespaces []runtime.Object
	gwClasses, gateways, routes, grants                       []runtime.Object
}

func (w *world) controller(t *testing.T) *Controller {
	t.Helper()
	ca, err := certs.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{
		IngressController: ourIngress,
		GatewayController: ourGateway,
		PublishService:    "ingress-minilab/ingress-minilab",
		GatewayHTTPPort:   80,
		GatewayHTTPSPort:  443,
	}, nil, nil, &route.Tables{}, certs.NewStore(ca))
	c.ingresses = netlisters.NewIngressLister(indexer(w.ingresses...))
	c.ingressClasses = netlisters.NewIngressClassLister(indexer(w.classes...))
	c.services = corelisters.NewServiceLister(indexer(w.services...))
	c.slices = discoverylisters.NewEndpointSliceLister(indexer(w.slices...))
	c.secrets = corelisters.NewSecretLister(indexer(w.secrets...))
	c.namespaces = corelisters.NewNamespaceLister(indexer(w.namespaces...))
	c.gwClasses = gwlisters.NewGatewayClassLister(indexer(w.gwClasses...))
	c.gateways = gwlisters.NewGatewayLister(indexer(w.gateways...))
	c.httpRoutes = gwlisters.NewHTTPRouteLister(indexer(w.routes...))
	c.referenceGrant = gwlisters.NewReferenceGrantLister(indexer(w.grants...))
	return c
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func om(ns, name string, age int) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 3, ResourceVersion: "1",
		CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Minute))}
}

func service(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: om(ns, name, 0), Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Ports: ports}}
}

func tlsSecret(t *testing.T, ns, name, host string) (*corev1.Secret, *tls.Certificate) {
	t.Helper()
	ca, err := certs.NewCA("user CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(host, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return &corev1.Secret{ObjectMeta: om(ns, name, 0), Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}}, c
}

func ingressBackend(svc string, port int32, portName string) networkingv1.IngressBackend {
	return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc,
		Port: networkingv1.ServiceBackendPort{Number: port, Name: portName}}}
}

func ingress(ns, name string, age int, class *string, host string, paths ...networkingv1.HTTPIngressPath) *networkingv1.Ingress {
	return &networkingv1.Ingress{ObjectMeta: om(ns, name, age), Spec: networkingv1.IngressSpec{
		IngressClassName: class,
		Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}},
	}}
}

func path(p string, typ networkingv1.PathType, be networkingv1.IngressBackend) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: p, PathType: &typ, Backend: be}
}

// lookup returns what the table does for a request: the first backend's
// first address, or the status.
func lookup(s *route.Server, method, host, target string) string {
	r := httptest.NewRequest(method, "http://"+host+target, nil)
	a := s.Lookup(r)
	switch {
	case a == nil:
		return "404"
	case a.Status != 0:
		return a.Message
	case a.Redirect != nil:
		return "redirect"
	}
	b := a.Backends[0]
	if b.Status != 0 {
		return b.Message
	}
	if len(b.Addrs) == 0 {
		return "no endpoints"
	}
	return b.Addrs[0]
}

func TestIngressTranslation(t *testing.T) {
	ours, theirs := "minilab", "other"
	def := &networkingv1.IngressClass{ObjectMeta: om("", ours, 0), Spec: networkingv1.IngressClassSpec{Controller: ourIngress}}
	def.Annotations = map[string]string{defaultClassAnnotation: "true"}
	other := &networkingv1.IngressClass{ObjectMeta: om("", theirs, 0), Spec: networkingv1.IngressClassSpec{Controller: "example.com/other"}}
	secret, cert := tlsSecret(t, "default", "app-tls", "app.example")

	ready, notReady := true, false
	portName, tcp, target := "web", corev1.ProtocolTCP, int32(8080)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: om("default", "headless-abc", 0),
		Ports:      []discoveryv1.EndpointPort{{Name: &portName, Protocol: &tcp, Port: &target}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.1.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}},
			{Addresses: []string{"10.1.0.6"}, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}},
		},
	}
	slice.Labels = map[string]string{discoveryv1.LabelServiceName: "headless"}
	ext := service("default", "ext", "", corev1.ServicePort{Port: 443})
	ext.Spec.Type = corev1.ServiceTypeExternalName
	ext.Spec.ExternalName = "api.example.net"
	publish := service("ingress-minilab", "ingress-minilab", "10.0.0.2")
	publish.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.1"}}

	a := ingress("default", "a", 0, &ours, "app.example",
		path("/", networkingv1.PathTypePrefix, ingressBackend("web", 80, "")),
		path("/h", networkingv1.PathTypeImplementationSpecific, ingressBackend("headless", 0, "web")),
		path("/ext", networkingv1.PathTypeExact, ingressBackend("ext", 443, "")),
		path("/missing", networkingv1.PathTypePrefix, ingressBackend("nope", 80, "")),
		path("/noport", networkingv1.PathTypePrefix, ingressBackend("web", 81, "")),
	)
	a.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"app.example"}, SecretName: "app-tls"}}
	b := ingress("default", "b", 1, &theirs, "theirs.example", path("/", networkingv1.PathTypePrefix, ingressBackend("web", 80, "")))
	c := ingress("default", "c", 2, nil, "*.wild.example", path("/", networkingv1.PathTypePrefix, ingressBackend("web", 0, "http")))
	d := ingress("default", "d", 3, nil, "legacy.example", path("/", networkingv1.PathTypePrefix, ingressBackend("web", 80, "")))
	d.Annotations = map[string]string{legacyClassAnnotation: theirs}
	e := &networkingv1.Ingress{ObjectMeta: om("default", "e", 4), Spec: networkingv1.IngressSpec{
		IngressClassName: &ours, DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
			Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}

	w := &world{
		ingresses: []runtime.Object{a, b, c, d, e},
		classes:   []runtime.Object{def, other},
		services: []runtime.Object{
			service("default", "web", "10.0.0.10", corev1.ServicePort{Name: "http", Port: 80}),
			service("default", "headless", corev1.ClusterIPNone, corev1.ServicePort{Name: "web", Port: 80}),
			ext, publish,
		},
		slices:  []runtime.Object{slice},
		secrets: []runtime.Object{secret},
	}
	ctl := w.controller(t)
	ctl.gwClasses = nil // no Gateway API
	ctl.rebuild()
	tb := ctl.tables.Load()
	for _, s := range []*route.Server{tb.HTTP, tb.HTTPS} {
		for _, c := range []struct{ host, path, want string }{
			{"app.example", "/", "10.0.0.10:80"},
			{"app.example", "/h/x", "10.1.0.5:8080"},
			{"app.example", "/ext", "api.example.net:443"},
			{"app.example", "/ext/x", "10.0.0.10:80"},
			{"app.example", "/missing", "503 service unavailable: service default/nope not found"},
			{"app.example", "/noport", "503 service unavailable: service default/web has no port 81"},
			{"x.wild.example", "/", "10.0.0.10:80"},
			{"theirs.example", "/", "10.0.0.10:80"}, // the default backend of e
			{"legacy.example", "/", "10.0.0.10:80"}, // likewise
		} {
			if got := lookup(s, "GET", c.host, c.path); got != c.want {
				t.Errorf("%s%s: got %q, want %q", c.host, c.path, got, c.want)
			}
		}
	}
	if len(tb.HTTP.IngressExact) != 1 || tb.HTTP.IngressExact["theirs.example"] != nil {
		t.Errorf("served exact hosts: %v", tb.HTTP.IngressExact)
	}
	got, err := ctl.certs.GetCertificate(&tls.ClientHelloInfo{ServerName: "app.example"})
	if err != nil || !got.Leaf.Equal(cert.Leaf) {
		t.Errorf("app.example did not get its Secret's certificate")
	}
	plan := ctl.status.pending
	if len(plan.ingresses) != 3 {
		t.Errorf("served ingresses: %d, want 3 (a, c, e)", len(plan.ingresses))
	}
	if len(plan.addresses) != 1 || plan.addresses[0].IP != "127.0.0.1" {
		t.Errorf("published addresses: %v", plan.addresses)
	}
}

func condOf(t *testing.T, conds []metav1.Condition, typ string) string {
	t.Helper()
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return "missing"
	}
	if c.ObservedGeneration != 3 {
		t.Errorf("condition %s: observedGeneration %d", typ, c.ObservedGeneration)
	}
	return string(c.Status) + "/" + c.Reason
}

func TestGatewayTranslation(t *testing.T) {
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		n := &corev1.Namespace{ObjectMeta: om("", name, 0)}
		n.Labels = labels
		return n
	}
	secret, _ := tlsSecret(t, "default", "gw-tls", "secure.example")
	otherSecret, _ := tlsSecret(t, "certs", "shared-tls", "shared.example")
	ourClass := &gwv1.GatewayClass{ObjectMeta: om("", "minilab", 0), Spec: gwv1.GatewayClassSpec{ControllerName: ourGateway}}
	theirClass := &gwv1.GatewayClass{ObjectMeta: om("", "other", 0), Spec: gwv1.GatewayClassSpec{ControllerName: "example.com/gw"}}
	host := func(h string) *gwv1.Hostname { v := gwv1.Hostname(h); return &v }
	from := func(f gwv1.FromNamespaces) *gwv1.AllowedRoutes {
		return &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &f}}
	}
	secretNS := gwv1.Namespace("certs")
	gw := &gwv1.Gateway{ObjectMeta: om("default", "gw", 0), Spec: gwv1.GatewaySpec{
		GatewayClassName: "minilab",
		Listeners: []gwv1.Listener{
			{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType, Hostname: host("*.gw.example")},
			{Name: "any", Port: 80, Protocol: gwv1.HTTPProtocolType, AllowedRoutes: from(gwv1.NamespacesFromAll)},
			{Name: "https", Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: host("secure.example"),
				TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "gw-tls"}}}},
			{Name: "https-cross", Port: 443, Protocol: gwv1.HTTPSProtocolType, Hostname: host("shared.example"),
				TLS: &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{{Name: "shared-tls", Namespace: &secretNS}}}},
			{Name: "tcp", Port: 9000, Protocol: gwv1.TCPProtocolType},
			{Name: "http-8080", Port: 8080, Protocol: gwv1.HTTPProtocolType},
		},
	}}
	theirs := &gwv1.Gateway{ObjectMeta: om("default", "theirs", 0), Spec: gwv1.GatewaySpec{GatewayClassName: "other",
		Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}

	section := func(s string) *gwv1.SectionName { v := gwv1.SectionName(s); return &v }
	parent := func(name string, sec *gwv1.SectionName) gwv1.ParentReference {
		p := gwv1.ParentReference{Name: gwv1.ObjectName(name), SectionName: sec}
		p.Namespace = (*gwv1.Namespace)(ptr("default"))
		return p
	}
	backend := func(ns, name string, port int32, weight int32) gwv1.HTTPBackendRef {
		b := gwv1.HTTPBackendRef{}
		b.Name = gwv1.ObjectName(name)
		b.Port = &port
		b.Weight = &weight
		if ns != "" {
			n := gwv1.Namespace(ns)
			b.Namespace = &n
		}
		return b
	}
	exact := gwv1.PathMatchExact
	r1 := &gwv1.HTTPRoute{ObjectMeta: om("default", "r1", 0), Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("gw", section("http")), parent("theirs", nil)}},
		Hostnames:       []gwv1.Hostname{"a.gw.example", "elsewhere.example"},
		Rules: []gwv1.HTTPRouteRule{
			{Matches: []gwv1.HTTPRouteMatch{{Path: &gwv1.HTTPPathMatch{Type: &exact, Value: ptr("/exact")}}},
				BackendRefs: []gwv1.HTTPBackendRef{backend("", "web", 80, 1)}},
			{BackendRefs: []gwv1.HTTPBackendRef{backend("", "web", 80, 1), backend("apps", "api", 80, 1)}},
		},
	}}
	// In another namespace: only the "any" listener (From All) takes it.
	r2 := &gwv1.HTTPRoute{ObjectMeta: om("apps", "r2", 1), Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("gw", section("http")), parent("gw", section("any"))}},
		Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{backend("", "api", 80, 1)}}},
	}}
	r3 := &gwv1.HTTPRoute{ObjectMeta: om("default", "r3", 2), Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("gw", section("http")), parent("gw", section("nope"))}},
		Hostnames:       []gwv1.Hostname{"nomatch.example"},
		Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{backend("", "web", 80, 1)}}},
	}}
	// Unsupported filter: not accepted; and a stale status of ours to drop on r5.
	r4 := &gwv1.HTTPRoute{ObjectMeta: om("default", "r4", 3), Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("gw", section("https"))}},
		Rules: []gwv1.HTTPRouteRule{{Filters: []gwv1.HTTPRouteFilter{{Type: gwv1.HTTPRouteFilterExtensionRef,
			ExtensionRef: &gwv1.LocalObjectReference{Kind: "X", Name: "y"}}}}},
	}}
	r5 := &gwv1.HTTPRoute{ObjectMeta: om("default", "r5", 4), Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{parent("theirs", nil)}}}}
	r5.Status.Parents = []gwv1.RouteParentStatus{
		{ParentRef: parent("gw", nil), ControllerName: ourGateway},
		{ParentRef: parent("theirs", nil), ControllerName: "example.com/gw"},
	}
	grant := &gwv1.ReferenceGrant{ObjectMeta: om("certs", "let-gateways", 0), Spec: gwv1.ReferenceGrantSpec{
		From: []gwv1.ReferenceGrantFrom{{Group: gwGroup, Kind: "HTTPRoute", Namespace: "default"}}, // not Gateway: no use
		To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: "Secret"}},
	}}
	publish := service("ingress-minilab", "ingress-minilab", "10.0.0.2")
	publish.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.1"}}

	w := &world{
		namespaces: []runtime.Object{ns("default", nil), ns("apps", nil), ns("certs", nil)},
		services: []runtime.Object{
			service("default", "web", "10.0.0.10", corev1.ServicePort{Name: "http", Port: 80}),
			service("apps", "api", "10.0.0.20", corev1.ServicePort{Port: 80}),
			publish,
		},
		secrets:   []runtime.Object{secret, otherSecret},
		gwClasses: []runtime.Object{ourClass, theirClass},
		gateways:  []runtime.Object{gw, theirs},
		routes:    []runtime.Object{r1, r2, r3, r4, r5},
		grants:    []runtime.Object{grant},
	}
	ctl := w.controller(t)
	ctl.rebuild()
	tb := ctl.tables.Load()
	plan := ctl.status.pending

	// Routing.
	for _, c := range []struct{ host, path, want string }{
		{"a.gw.example", "/exact", "10.0.0.10:80"},
		// r1 names it, but it is not within its listener's *.gw.example:
		// r2 on the catch-all listener takes it.
		{"elsewhere.example", "/exact", "10.0.0.20:80"},
		{"anything.test", "/", "10.0.0.20:80"}, // r2 on the catch-all listener
	} {
		if got := lookup(tb.HTTP, "GET", c.host, c.path); got != c.want {
			t.Errorf("%s%s: got %q, want %q", c.host, c.path, got, c.want)
		}
	}
	// r1's second rule: one valid backend, one not permitted (500 for its share).
	a := tb.HTTP.Lookup(httptest.NewRequest("GET", "http://a.gw.example/other", nil))
	if a == nil || len(a.Backends) != 2 || a.Backends[0].Status != 0 || a.Backends[1].Status != 500 {
		t.Errorf("r1 rule 2: %+v", a)
	}
	if got := lookup(tb.HTTPS, "GET", "a.gw.example", "/exact"); got != "404" {
		t.Errorf("an HTTP listener's route served on HTTPS: %s", got)
	}

	// GatewayClasses: ours only.
	if len(plan.classes) != 1 || condOf(t, plan.classes[0].Status.Conditions, "Accepted") != "True/Accepted" {
		t.Errorf("classes: %+v", plan.classes)
	}
	// Gateway status.
	if len(plan.gateways) != 1 {
		t.Fatalf("gateways: %d", len(plan.gateways))
	}
	st := plan.gateways[0].Status
	if got := condOf(t, st.Conditions, "Accepted"); got != "True/ListenersNotValid" {
		t.Errorf("gateway Accepted: %s", got)
	}
	if got := condOf(t, st.Conditions, "Programmed"); got != "True/Programmed" {
		t.Errorf("gateway Programmed: %s", got)
	}
	if len(st.Addresses) != 1 || st.Addresses[0].Value != "127.0.0.1" || *st.Addresses[0].Type != gwv1.IPAddressType {
		t.Errorf("gateway addresses: %+v", st.Addresses)
	}
	want := map[string][4]string{ // Accepted, ResolvedRefs, Programmed, attachedRoutes
		"http":        {"True/Accepted", "True/ResolvedRefs", "True/Programmed", "1"},
		"any":         {"True/Accepted", "True/ResolvedRefs", "True/Programmed", "1"},
		"https":       {"True/Accepted", "True/ResolvedRefs", "True/Programmed", "0"},
		"https-cross": {"True/Accepted", "False/RefNotPermitted", "False/Invalid", "0"},
		"tcp":         {"False/UnsupportedProtocol", "True/ResolvedRefs", "False/Invalid", "0"},
		"http-8080":   {"False/PortUnavailable", "True/ResolvedRefs", "False/Invalid", "0"},
	}
	for _, l := range st.Listeners {
		w := want[string(l.Name)]
		got := [4]string{condOf(t, l.Conditions, "Accepted"), condOf(t, l.Conditions, "ResolvedRefs"),
			condOf(t, l.Conditions, "Programmed"), string(rune('0' + l.AttachedRoutes))}
		if got != w {
			t.Errorf("listener %s: %v, want %v", l.Name, got, w)
		}
		if l.Name == "tcp" {
			if len(l.SupportedKinds) != 0 {
				t.Errorf("listener tcp supportedKinds %v, want none", l.SupportedKinds)
			}
		} else if len(l.SupportedKinds) != 1 || l.SupportedKinds[0].Kind != "HTTPRoute" {
			t.Errorf("listener %s supportedKinds %v", l.Name, l.SupportedKinds)
		}
	}

	// Route statuses.
	routes := map[string]*gwv1.HTTPRoute{}
	for _, r := range plan.routes {
		routes[r.Name] = r
	}
	check := func(route string, i int, accepted, resolved string) {
		t.Helper()
		r := routes[route]
		if r == nil {
			t.Errorf("%s: no status planned", route)
			return
		}
		if i >= len(r.Status.Parents) {
			t.Errorf("%s: %d parents", route, len(r.Status.Parents))
			return
		}
		p := r.Status.Parents[i]
		if p.ControllerName != ourGateway {
			t.Errorf("%s parent %d: controller %s", route, i, p.ControllerName)
		}
		if got := condOf(t, p.Conditions, "Accepted"); got != accepted {
			t.Errorf("%s parent %d Accepted: %s, want %s", route, i, got, accepted)
		}
		if got := condOf(t, p.Conditions, "ResolvedRefs"); got != resolved {
			t.Errorf("%s parent %d ResolvedRefs: %s, want %s", route, i, got, resolved)
		}
	}
	check("r1", 0, "True/Accepted", "False/RefNotPermitted")
	if n := len(routes["r1"].Status.Parents); n != 1 {
		t.Errorf("r1: %d parents, want 1 (theirs is not ours)", n)
	}
	check("r2", 0, "False/NotAllowedByListeners", "True/ResolvedRefs")
	check("r2", 1, "True/Accepted", "True/ResolvedRefs")
	check("r3", 0, "False/NoMatchingListenerHostname", "True/ResolvedRefs")
	check("r3", 1, "False/NoMatchingParent", "True/ResolvedRefs")
	check("r4", 0, "False/UnsupportedValue", "True/ResolvedRefs")
	if r := routes["r5"]; r == nil || len(r.Status.Parents) != 1 || r.Status.Parents[0].ControllerName != "example.com/gw" {
		t.Errorf("r5: our stale parent status is not dropped: %+v", r)
	}

	// Certificates: the listener's Secret; the cross-namespace one is not
	// permitted, so shared.example gets an issued certificate.
	c, err := ctl.certs.GetCertificate(&tls.ClientHelloInfo{ServerName: "secure.example"})
	if err != nil || c.Leaf.Subject.CommonName != "secure.example" || c.Leaf.Issuer.CommonName != "user CA" {
		t.Errorf("secure.example: %v %v", c.Leaf.Issuer, err)
	}
	c, err = ctl.certs.GetCertificate(&tls.ClientHelloInfo{ServerName: "shared.example"})
	if err != nil || c.Leaf.Issuer.CommonName != "test" {
		t.Errorf("shared.example: issued by %v (%v)", c.Leaf.Issuer, err)
	}

	// A second rebuild from objects carrying the planned statuses plans
	// the same statuses (so nothing would be written).
	if !sameGatewayStatus(&plan.gateways[0].Status, &st) {
		t.Error("gateway status differs from itself")
	}
	w.gateways = []runtime.Object{plan.gateways[0], theirs}
	w.gwClasses = []runtime.Object{plan.classes[0], theirClass}
	ctl2 := w.controller(t)
	ctl2.rebuild()
	p2 := ctl2.status.pending
	if !sameGatewayStatus(&p2.gateways[0].Status, &st) || !sameConditions(p2.classes[0].Status.Conditions, plan.classes[0].Status.Conditions) {
		t.Error("a rebuild over the written status wants another status")
	}
	for i, c := range p2.gateways[0].Status.Conditions {
		if !c.LastTransitionTime.Equal(&st.Conditions[i].LastTransitionTime) {
			t.Errorf("condition %s: lastTransitionTime changed", c.Type)
		}
	}
}

func TestHostIntersect(t *testing.T) {
	hs := func(h ...string) []gwv1.Hostname {
		var out []gwv1.Hostname
		for _, x := range h {
			out = append(out, gwv1.Hostname(x))
		}
		return out
	}
	cases := []struct {
		listener string
		route    []gwv1.Hostname
		want     []string
	}{
		{"", nil, []string{""}},
		{"a.example", nil, []string{"a.example"}},
		{"", hs("a.example"), []string{"a.example"}},
		{"*.example", hs("a.example", "b.a.example", "other.test", "example"), []string{"a.example", "b.a.example"}},
		{"a.example", hs("*.example"), []string{"a.example"}},
		{"*.example", hs("*.a.example"), []string{"*.a.example"}},
		{"*.a.example", hs("*.example"), []string{"*.a.example"}},
		{"a.example", hs("b.example"), nil},
	}
	for _, c := range cases {
		got := hostIntersect(c.listener, c.route)
		if len(got) != len(c.want) {
			t.Errorf("%q %v: %v, want %v", c.listener, c.route, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q %v: %v, want %v", c.listener, c.route, got, c.want)
			}
		}
	}
}
