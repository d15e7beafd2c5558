package controller

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"minilab/addons/ingress/certs"
	"minilab/addons/ingress/route"
)

const gwGroup = "gateway.networking.k8s.io"

// listener is one Gateway listener being translated.
type listener struct {
	gw     *gwv1.Gateway
	spec   *gwv1.Listener
	status *gwv1.ListenerStatus
	server *route.Server // nil when the listener is not served
	// routesAllowed: the listener accepts HTTPRoutes (kinds).
	routesAllowed bool
	attached      map[string]bool
}

func cond(t string, ok bool, reason, msg string, gen int64) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
}

// mergeConditions returns old's conditions updated with want (keeping each
// unchanged condition's lastTransitionTime); conditions of other types are
// dropped when drop is true.
func mergeConditions(old []metav1.Condition, want []metav1.Condition, drop bool) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(want))
	if !drop {
		for _, c := range old {
			out = append(out, c)
		}
	}
	for _, w := range want {
		if prev := meta.FindStatusCondition(old, w.Type); prev != nil && prev.Status == w.Status {
			w.LastTransitionTime = prev.LastTransitionTime
		} else {
			w.LastTransitionTime = metav1.Now()
		}
		found := false
		for i := range out {
			if out[i].Type == w.Type {
				out[i] = w
				found = true
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// grantAllows reports whether a ReferenceGrant in toNS lets fromKind objects
// of fromNS refer to toKind/toName.
func (b *build) grantAllows(fromKind, fromNS, toGroup, toKind, toNS, toName string) bool {
	_, _, _, grants := b.c.gatewayListers()
	if grants == nil {
		return false
	}
	list, err := grants.ReferenceGrants(toNS).List(labels.Everything())
	if err != nil {
		return false
	}
	for _, g := range list {
		fromOK := false
		for _, f := range g.Spec.From {
			if string(f.Group) == gwGroup && string(f.Kind) == fromKind && string(f.Namespace) == fromNS {
				fromOK = true
				break
			}
		}
		if !fromOK {
			continue
		}
		for _, t := range g.Spec.To {
			if string(t.Group) == toGroup && string(t.Kind) == toKind && (t.Name == nil || string(*t.Name) == toName) {
				return true
			}
		}
	}
	return false
}

var httpRouteKind = gwv1.RouteGroupKind{Group: ptr(gwv1.Group(gwGroup)), Kind: "HTTPRoute"}

func ptr[T any](v T) *T { return &v }

// buildGateway translates GatewayClasses, Gateways and HTTPRoutes; it
// returns how many Gateways and HTTPRoutes are served.
func (b *build) buildGateway() (int, int) {
	classLister, gwLister, routeLister, _ := b.c.gatewayListers()
	if classLister == nil {
		return 0, 0
	}
	ours := map[string]bool{}
	classes, _ := classLister.List(labels.Everything())
	for _, gc := range classes {
		if string(gc.Spec.ControllerName) != b.c.cfg.GatewayController {
			continue
		}
		ours[gc.Name] = true
		want := gc.DeepCopy()
		want.Status.Conditions = mergeConditions(gc.Status.Conditions, []metav1.Condition{
			cond(string(gwv1.GatewayClassConditionStatusAccepted), true, string(gwv1.GatewayClassReasonAccepted),
				"handled by minilab's ingress controller", gc.Generation),
			cond(string(gwv1.GatewayClassConditionStatusSupportedVersion), true, string(gwv1.GatewayClassReasonSupportedVersion),
				"", gc.Generation),
		}, false)
		b.plan.classes = append(b.plan.classes, want)
	}

	all, _ := gwLister.List(labels.Everything())
	var gws []*gwv1.Gateway
	for _, g := range all {
		if ours[string(g.Spec.GatewayClassName)] {
			gws = append(gws, g)
		}
	}
	sort.Slice(gws, func(i, j int) bool { return olderFirst(gws[i], gws[j]) })
	listeners := map[string][]*listener{} // by gateway namespace/name
	wantGW := map[string]*gwv1.Gateway{}
	for _, g := range gws {
		want := g.DeepCopy()
		wantGW[key(g)] = want
		listeners[key(g)] = b.gatewayListeners(want)
	}

	allRoutes, _ := routeLister.List(labels.Everything())
	sort.Slice(allRoutes, func(i, j int) bool { return olderFirst(allRoutes[i], allRoutes[j]) })
	nRoutes := 0
	for _, r := range allRoutes {
		if b.buildRoute(r, wantGW, listeners) {
			nRoutes++
		}
	}

	for _, g := range gws {
		want := wantGW[key(g)]
		b.gatewayStatus(g, want, listeners[key(g)])
		b.plan.gateways = append(b.plan.gateways, want)
	}
	return len(gws), nRoutes
}

// gatewayListeners checks a Gateway's listeners, registers their
// certificates, and starts their statuses.
func (b *build) gatewayListeners(g *gwv1.Gateway) []*listener {
	var out []*listener
	gen := g.Generation
	for i := range g.Spec.Listeners {
		l := &g.Spec.Listeners[i]
		li := &listener{gw: g, spec: l, attached: map[string]bool{}, status: &gwv1.ListenerStatus{Name: l.Name}}
		out = append(out, li)

		// Route kinds.
		kindsOK := true
		var kinds []gwv1.RouteGroupKind
		if l.AllowedRoutes != nil && len(l.AllowedRoutes.Kinds) > 0 {
			for _, k := range l.AllowedRoutes.Kinds {
				group := gwGroup
				if k.Group != nil {
					group = string(*k.Group)
				}
				if group == gwGroup && k.Kind == "HTTPRoute" {
					kinds = append(kinds, httpRouteKind)
				} else {
					kindsOK = false
				}
			}
		} else {
			kinds = []gwv1.RouteGroupKind{httpRouteKind}
		}
		li.routesAllowed = len(kinds) > 0
		li.status.SupportedKinds = kinds

		accepted, acceptReason, acceptMsg := true, string(gwv1.ListenerReasonAccepted), ""
		port := int(l.Port)
		switch l.Protocol {
		case gwv1.HTTPProtocolType:
			if port != b.c.cfg.GatewayHTTPPort {
				accepted, acceptReason = false, string(gwv1.ListenerReasonPortUnavailable)
				acceptMsg = fmt.Sprintf("HTTP is served on port %d only", b.c.cfg.GatewayHTTPPort)
			} else {
				li.server = b.table.HTTP
			}
		case gwv1.HTTPSProtocolType:
			switch {
			case port != b.c.cfg.GatewayHTTPSPort:
				accepted, acceptReason = false, string(gwv1.ListenerReasonPortUnavailable)
				acceptMsg = fmt.Sprintf("HTTPS is served on port %d only", b.c.cfg.GatewayHTTPSPort)
			case l.TLS != nil && l.TLS.Mode != nil && *l.TLS.Mode != gwv1.TLSModeTerminate:
				accepted, acceptReason = false, string(gwv1.ListenerReasonUnsupportedValue)
				acceptMsg = "only TLS mode Terminate is supported"
			default:
				li.server = b.table.HTTPS
			}
		default:
			li.status.SupportedKinds = nil // no route kind of ours goes there
			accepted, acceptReason = false, string(gwv1.ListenerReasonUnsupportedProtocol)
			acceptMsg = fmt.Sprintf("protocol %s is not supported (HTTP and HTTPS are)", l.Protocol)
		}

		resolved, resolveReason, resolveMsg := true, string(gwv1.ListenerReasonResolvedRefs), ""
		if !kindsOK {
			resolved, resolveReason = false, string(gwv1.ListenerReasonInvalidRouteKinds)
			resolveMsg = "only HTTPRoute (gateway.networking.k8s.io) is supported"
		}
		if li.server != nil && l.Protocol == gwv1.HTTPSProtocolType && l.TLS != nil {
			if ok, reason, msg := b.listenerCertificates(g, l); !ok && resolved {
				resolved, resolveReason, resolveMsg = false, reason, msg
			}
		}
		if !accepted {
			li.server = nil
		}
		programmed := accepted && resolved
		progReason, progMsg := string(gwv1.ListenerReasonProgrammed), ""
		if !programmed {
			progReason, progMsg = string(gwv1.ListenerReasonInvalid), "the listener is not served: see Accepted and ResolvedRefs"
			if accepted {
				// Invalid certificate references: still served, with the
				// CA's certificates; but not Programmed as the spec says.
				progMsg = "certificate references are not resolved: see ResolvedRefs"
			}
		}
		if resolveMsg != "" || acceptMsg != "" {
			b.errorf("gateway %s listener %s: %s", key(g), l.Name, strings.TrimSpace(acceptMsg+" "+resolveMsg))
		}
		li.status.Conditions = []metav1.Condition{
			cond(string(gwv1.ListenerConditionAccepted), accepted, acceptReason, acceptMsg, gen),
			cond(string(gwv1.ListenerConditionResolvedRefs), resolved, resolveReason, resolveMsg, gen),
			cond(string(gwv1.ListenerConditionProgrammed), programmed, progReason, progMsg, gen),
			cond(string(gwv1.ListenerConditionConflicted), false, string(gwv1.ListenerReasonNoConflicts), "", gen),
		}
	}
	return out
}

// listenerCertificates registers an HTTPS listener's certificates.
func (b *build) listenerCertificates(g *gwv1.Gateway, l *gwv1.Listener) (bool, string, string) {
	ok, reason, msg := true, "", ""
	fail := func(r, m string) {
		if ok {
			ok, reason, msg = false, r, m
		}
	}
	for _, ref := range l.TLS.CertificateRefs {
		if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Secret") {
			fail(string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("certificate reference %s is not a core Secret", ref.Name))
			continue
		}
		ns := g.Namespace
		if ref.Namespace != nil && string(*ref.Namespace) != "" {
			ns = string(*ref.Namespace)
		}
		if ns != g.Namespace && !b.grantAllows("Gateway", g.Namespace, "", "Secret", ns, string(ref.Name)) {
			fail(string(gwv1.ListenerReasonRefNotPermitted), fmt.Sprintf("no ReferenceGrant in %s lets this Gateway use Secret %s", ns, ref.Name))
			continue
		}
		sec, err := b.c.secrets.Secrets(ns).Get(string(ref.Name))
		if err != nil {
			fail(string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("Secret %s/%s not found (or not of type kubernetes.io/tls)", ns, ref.Name))
			continue
		}
		cert, err := certs.ParsePair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
		if err != nil {
			fail(string(gwv1.ListenerReasonInvalidCertificateRef), fmt.Sprintf("Secret %s/%s: %v", ns, ref.Name, err))
			continue
		}
		if l.Hostname != nil && *l.Hostname != "" {
			b.names.Add(cert, string(*l.Hostname))
		} else {
			b.names.Add(cert)
		}
	}
	return ok, reason, msg
}

// gatewayStatus fills a Gateway's wanted status.
func (b *build) gatewayStatus(old, want *gwv1.Gateway, ls []*listener) {
	gen := want.Generation
	var statuses []gwv1.ListenerStatus
	valid, invalid := 0, 0
	for _, li := range ls {
		li.status.AttachedRoutes = int32(len(li.attached))
		var prev []metav1.Condition
		for _, s := range old.Status.Listeners {
			if s.Name == li.spec.Name {
				prev = s.Conditions
			}
		}
		li.status.Conditions = mergeConditions(prev, li.status.Conditions, true)
		statuses = append(statuses, *li.status)
		if li.server != nil {
			valid++
		} else {
			invalid++
		}
	}
	want.Status.Listeners = statuses
	want.Status.Addresses = nil
	for _, a := range b.plan.addresses {
		if a.IP != "" {
			want.Status.Addresses = append(want.Status.Addresses, gwv1.GatewayStatusAddress{Type: ptr(gwv1.IPAddressType), Value: a.IP})
		} else if a.Hostname != "" {
			want.Status.Addresses = append(want.Status.Addresses, gwv1.GatewayStatusAddress{Type: ptr(gwv1.HostnameAddressType), Value: a.Hostname})
		}
	}

	accepted, acceptReason, acceptMsg := true, string(gwv1.GatewayReasonAccepted), ""
	switch {
	case len(want.Spec.Addresses) > 0:
		accepted, acceptReason, acceptMsg = false, string(gwv1.GatewayReasonUnsupportedAddress), "spec.addresses is not supported: the address is the ingress Service's"
	case valid == 0 && invalid > 0:
		accepted, acceptReason, acceptMsg = false, string(gwv1.GatewayReasonListenersNotValid), "no listener is valid"
	case invalid > 0:
		acceptReason, acceptMsg = string(gwv1.GatewayReasonListenersNotValid), "some listeners are not valid"
	}
	programmed, progReason, progMsg := accepted, string(gwv1.GatewayReasonProgrammed), ""
	switch {
	case !accepted:
		progReason, progMsg = string(gwv1.GatewayReasonInvalid), "the Gateway is not accepted"
	case b.c.cfg.PublishService != "" && len(want.Status.Addresses) == 0:
		programmed, progReason, progMsg = false, string(gwv1.GatewayReasonAddressNotAssigned), "the Service "+b.c.cfg.PublishService+" has no load-balancer address yet"
	}
	want.Status.Conditions = mergeConditions(old.Status.Conditions, []metav1.Condition{
		cond(string(gwv1.GatewayConditionAccepted), accepted, acceptReason, acceptMsg, gen),
		cond(string(gwv1.GatewayConditionProgrammed), programmed, progReason, progMsg, gen),
	}, true)
}

// hostIntersect returns the hostnames a route serves on a listener: nil when
// they do not meet, [""] for any host.
func hostIntersect(listenerHost string, routeHosts []gwv1.Hostname) []string {
	if len(routeHosts) == 0 {
		return []string{listenerHost}
	}
	var out []string
	for _, rh := range routeHosts {
		r := strings.ToLower(string(rh))
		l := strings.ToLower(listenerHost)
		switch {
		case l == "":
			out = append(out, r)
		case r == l:
			out = append(out, r)
		case strings.HasPrefix(l, "*.") && wildcardCovers(l, r):
			out = append(out, r)
		case strings.HasPrefix(r, "*.") && wildcardCovers(r, l):
			out = append(out, l)
		}
	}
	return out
}

// wildcardCovers reports whether a Gateway API wildcard ("*.example.com",
// one or more labels) covers host (itself possibly a narrower wildcard).
func wildcardCovers(wild, host string) bool {
	suffix := wild[1:] // ".example.com"
	return strings.HasSuffix(host, suffix) && len(host) > len(suffix) && host != wild
}

// namespaceAllowed applies a listener's allowedRoutes.namespaces.
func (b *build) namespaceAllowed(li *listener, routeNS string) bool {
	from := gwv1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if ar := li.spec.AllowedRoutes; ar != nil && ar.Namespaces != nil {
		if ar.Namespaces.From != nil {
			from = *ar.Namespaces.From
		}
		sel = ar.Namespaces.Selector
	}
	switch from {
	case gwv1.NamespacesFromAll:
		return true
	case gwv1.NamespacesFromSelector:
		if sel == nil {
			return false
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false
		}
		ns, err := b.c.namespaces.Get(routeNS)
		if err != nil {
			return false
		}
		return s.Matches(labels.Set(ns.Labels))
	default: // Same (None is not in v1; treat others as Same)
		return routeNS == li.gw.Namespace
	}
}

// parentResult is what a route gets on one of our parentRefs.
type parentResult struct {
	ref       gwv1.ParentReference
	listeners []*listener
	hosts     [][]string // per listener
	reason    string     // when no listener: why
	msg       string
}

// buildRoute translates one HTTPRoute; it reports whether one of our
// Gateways is among its parents.
func (b *build) buildRoute(r *gwv1.HTTPRoute, wantGW map[string]*gwv1.Gateway, listeners map[string][]*listener) bool {
	var results []*parentResult
	for _, ref := range r.Spec.ParentRefs {
		if ref.Group != nil && string(*ref.Group) != gwGroup {
			continue
		}
		if ref.Kind != nil && string(*ref.Kind) != "Gateway" {
			continue
		}
		ns := r.Namespace
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		gk := ns + "/" + string(ref.Name)
		if wantGW[gk] == nil {
			continue
		}
		res := &parentResult{ref: ref}
		results = append(results, res)
		matched, allowed := 0, 0
		for _, li := range listeners[gk] {
			if ref.SectionName != nil && *ref.SectionName != li.spec.Name {
				continue
			}
			if ref.Port != nil && *ref.Port != li.spec.Port {
				continue
			}
			matched++
			if li.server == nil || !li.routesAllowed || !b.namespaceAllowed(li, r.Namespace) {
				continue
			}
			allowed++
			lh := ""
			if li.spec.Hostname != nil {
				lh = string(*li.spec.Hostname)
			}
			hosts := hostIntersect(lh, r.Spec.Hostnames)
			if len(hosts) == 0 {
				continue
			}
			res.listeners = append(res.listeners, li)
			res.hosts = append(res.hosts, hosts)
		}
		switch {
		case matched == 0:
			res.reason, res.msg = string(gwv1.RouteReasonNoMatchingParent), "no listener matches the sectionName/port"
		case allowed == 0:
			res.reason, res.msg = string(gwv1.RouteReasonNotAllowedByListeners), "no listener lets this route attach (namespace, kind, or the listener is invalid)"
		case len(res.listeners) == 0:
			res.reason, res.msg = string(gwv1.RouteReasonNoMatchingListenerHostname), "no listener hostname meets the route's hostnames"
		}
	}
	if len(results) == 0 {
		// No longer ours: drop the parents we wrote before.
		keep := []gwv1.RouteParentStatus{} // "parents" is required: never null
		for _, p := range r.Status.Parents {
			if string(p.ControllerName) != b.c.cfg.GatewayController {
				keep = append(keep, p)
			}
		}
		if len(keep) != len(r.Status.Parents) {
			want := r.DeepCopy()
			want.Status.Parents = keep
			b.plan.routes = append(b.plan.routes, want)
		}
		return false
	}

	rules, resolved, resolveReason, resolveMsg, invalidMsg := b.routeRules(r)
	if invalidMsg != "" {
		b.errorf("httproute %s: %s", key(r), invalidMsg)
	} else if !resolved {
		b.errorf("httproute %s: %s", key(r), resolveMsg)
	}

	want := r.DeepCopy()
	var parents []gwv1.RouteParentStatus
	for _, p := range r.Status.Parents {
		if string(p.ControllerName) != b.c.cfg.GatewayController {
			parents = append(parents, p)
		}
	}
	gen := r.Generation
	for _, res := range results {
		accepted, reason, msg := true, string(gwv1.RouteReasonAccepted), ""
		switch {
		case res.reason != "":
			accepted, reason, msg = false, res.reason, res.msg
		case invalidMsg != "":
			accepted, reason, msg = false, string(gwv1.RouteReasonUnsupportedValue), invalidMsg
		}
		if accepted {
			for i, li := range res.listeners {
				li.attached[key(r)] = true
				for _, h := range res.hosts[i] {
					for _, rule := range rules {
						li.server.AddGateway(h, rule)
					}
				}
			}
		}
		var prev []metav1.Condition
		for _, p := range r.Status.Parents {
			if string(p.ControllerName) == b.c.cfg.GatewayController && parentRefEqual(p.ParentRef, res.ref) {
				prev = p.Conditions
			}
		}
		rr := string(gwv1.RouteReasonResolvedRefs)
		if !resolved {
			rr = resolveReason
		}
		parents = append(parents, gwv1.RouteParentStatus{
			ParentRef:      res.ref,
			ControllerName: gwv1.GatewayController(b.c.cfg.GatewayController),
			Conditions: mergeConditions(prev, []metav1.Condition{
				cond(string(gwv1.RouteConditionAccepted), accepted, reason, msg, gen),
				cond(string(gwv1.RouteConditionResolvedRefs), resolved, rr, resolveMsg, gen),
			}, true),
		})
	}
	want.Status.Parents = parents
	b.plan.routes = append(b.plan.routes, want)
	return true
}

func parentRefEqual(a, b gwv1.ParentReference) bool {
	s := func(p *gwv1.SectionName) string {
		if p == nil {
			return ""
		}
		return string(*p)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	g := func(p *gwv1.Group) *string {
		if p == nil {
			return nil
		}
		v := string(*p)
		return &v
	}
	k := func(p *gwv1.Kind) *string {
		if p == nil {
			return nil
		}
		v := string(*p)
		return &v
	}
	n := func(p *gwv1.Namespace) *string {
		if p == nil {
			return nil
		}
		v := string(*p)
		return &v
	}
	port := func(p *gwv1.PortNumber) int32 {
		if p == nil {
			return 0
		}
		return *p
	}
	return a.Name == b.Name && s(a.SectionName) == s(b.SectionName) && str(g(a.Group)) == str(g(b.Group)) &&
		str(k(a.Kind)) == str(k(b.Kind)) && str(n(a.Namespace)) == str(n(b.Namespace)) && port(a.Port) == port(b.Port)
}

// routeRules translates an HTTPRoute's rules. invalidMsg is set when the
// route uses something not supported (the route is then not accepted);
// resolved is false when a backend reference does not resolve.
func (b *build) routeRules(r *gwv1.HTTPRoute) (rules []*route.Rule, resolved bool, resolveReason, resolveMsg, invalidMsg string) {
	resolved = true
	fail := func(reason, msg string) {
		if resolved {
			resolved, resolveReason, resolveMsg = false, reason, msg
		}
	}
	owner := "httproute " + key(r)
	idx := 0
	for ri, rule := range r.Spec.Rules {
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gwv1.HTTPRouteMatch{{}}
		}
		// Backends, shared by the rule's matches.
		var backends []*route.Backend
		for _, ref := range rule.BackendRefs {
			be, reason, msg := b.routeBackend(r, ref.BackendObjectReference, ref.Weight)
			if reason != "" {
				fail(reason, msg)
			}
			for _, f := range ref.Filters {
				switch f.Type {
				case gwv1.HTTPRouteFilterRequestHeaderModifier:
					be.RequestHeaders = headerFilter(f.RequestHeaderModifier)
				case gwv1.HTTPRouteFilterResponseHeaderModifier:
					be.ResponseHeaders = headerFilter(f.ResponseHeaderModifier)
				default:
					if invalidMsg == "" {
						invalidMsg = fmt.Sprintf("rule %d: backendRef filter %s is not supported", ri, f.Type)
					}
				}
			}
			backends = append(backends, be)
		}
		for _, m := range matches {
			rl := &route.Rule{
				PathKind: route.PathPrefix,
				Path:     "/",
				Created:  r.CreationTimestamp.Time,
				Owner:    key(r),
				Index:    idx,
			}
			idx++
			if m.Path != nil {
				t := gwv1.PathMatchPathPrefix
				if m.Path.Type != nil {
					t = *m.Path.Type
				}
				v := "/"
				if m.Path.Value != nil {
					v = *m.Path.Value
				}
				switch t {
				case gwv1.PathMatchExact:
					rl.PathKind, rl.Path = route.PathExact, v
				case gwv1.PathMatchPathPrefix:
					rl.Path = v
				case gwv1.PathMatchRegularExpression:
					if err := rl.SetPathRegex(v); err != nil && invalidMsg == "" {
						invalidMsg = fmt.Sprintf("rule %d: path regular expression %q: %v", ri, v, err)
					}
				default:
					if invalidMsg == "" {
						invalidMsg = fmt.Sprintf("rule %d: path match type %s is not supported", ri, t)
					}
				}
			}
			if m.Method != nil {
				rl.Method = string(*m.Method)
			}
			// a header or query parameter match; a regular expression that does
			// not compile makes the rule invalid
			stringMatch := func(what, name, value string, regex bool) route.StringMatch {
				sm := route.StringMatch{Name: name, Value: value}
				if regex {
					re, err := route.CompileRegex(value)
					if err != nil && invalidMsg == "" {
						invalidMsg = fmt.Sprintf("rule %d: %s regular expression %q: %v", ri, what, value, err)
					}
					sm.Regex = re
				}
				return sm
			}
			for _, h := range m.Headers {
				regex := h.Type != nil && *h.Type == gwv1.HeaderMatchRegularExpression
				rl.Headers = append(rl.Headers, stringMatch("header", string(h.Name), h.Value, regex))
			}
			for _, q := range m.QueryParams {
				regex := q.Type != nil && *q.Type == gwv1.QueryParamMatchRegularExpression
				rl.Query = append(rl.Query, stringMatch("query", string(q.Name), q.Value, regex))
			}

			a := &route.Action{Owner: owner, Backends: backends}
			matchedPrefix := ""
			if rl.PathKind == route.PathPrefix {
				matchedPrefix = rl.Path
			}
			for _, f := range rule.Filters {
				switch f.Type {
				case gwv1.HTTPRouteFilterRequestHeaderModifier:
					a.RequestHeaders = headerFilter(f.RequestHeaderModifier)
				case gwv1.HTTPRouteFilterResponseHeaderModifier:
					a.ResponseHeaders = headerFilter(f.ResponseHeaderModifier)
				case gwv1.HTTPRouteFilterRequestRedirect:
					if f.RequestRedirect == nil {
						continue
					}
					rd := &route.Redirect{Path: pathModifier(f.RequestRedirect.Path, matchedPrefix)}
					if f.RequestRedirect.Scheme != nil {
						rd.Scheme = *f.RequestRedirect.Scheme
					}
					if f.RequestRedirect.Hostname != nil {
						rd.Hostname = string(*f.RequestRedirect.Hostname)
					}
					if f.RequestRedirect.Port != nil {
						rd.Port = int(*f.RequestRedirect.Port)
					}
					if f.RequestRedirect.StatusCode != nil {
						rd.StatusCode = *f.RequestRedirect.StatusCode
					}
					a.Redirect = rd
				case gwv1.HTTPRouteFilterURLRewrite:
					if f.URLRewrite == nil {
						continue
					}
					if f.URLRewrite.Hostname != nil {
						a.RewriteHost = string(*f.URLRewrite.Hostname)
					}
					a.RewritePath = pathModifier(f.URLRewrite.Path, matchedPrefix)
				default:
					if invalidMsg == "" {
						invalidMsg = fmt.Sprintf("rule %d: filter %s is not supported", ri, f.Type)
					}
				}
			}
			if a.Redirect == nil && len(a.Backends) == 0 {
				a.Status = http.StatusInternalServerError
				a.Message = "500 internal server error: the route rule has no backend"
			}
			rl.Action = a
			rules = append(rules, rl)
		}
	}
	return rules, resolved, resolveReason, resolveMsg, invalidMsg
}

func headerFilter(f *gwv1.HTTPHeaderFilter) *route.HeaderFilter {
	if f == nil {
		return nil
	}
	out := &route.HeaderFilter{Remove: f.Remove}
	for _, h := range f.Set {
		out.Set = append(out.Set, [2]string{string(h.Name), h.Value})
	}
	for _, h := range f.Add {
		out.Add = append(out.Add, [2]string{string(h.Name), h.Value})
	}
	return out
}

func pathModifier(p *gwv1.HTTPPathModifier, matchedPrefix string) *route.PathModifier {
	if p == nil {
		return nil
	}
	switch p.Type {
	case gwv1.FullPathHTTPPathModifier:
		return &route.PathModifier{FullPath: p.ReplaceFullPath}
	case gwv1.PrefixMatchHTTPPathModifier:
		return &route.PathModifier{PrefixReplace: p.ReplacePrefixMatch, MatchedPrefix: matchedPrefix}
	}
	return nil
}

// routeBackend resolves one backendRef. An invalid one answers 500, as the
// spec says; reason is then the ResolvedRefs reason.
func (b *build) routeBackend(r *gwv1.HTTPRoute, ref gwv1.BackendObjectReference, weight *int32) (*route.Backend, string, string) {
	w := int32(1)
	if weight != nil {
		w = *weight
	}
	ns := r.Namespace
	if ref.Namespace != nil && *ref.Namespace != "" {
		ns = string(*ref.Namespace)
	}
	port := int32(0)
	if ref.Port != nil {
		port = *ref.Port
	}
	be := &route.Backend{Name: fmt.Sprintf("%s/%s:%d", ns, ref.Name, port), Weight: w}
	bad := func(reason, msg string) (*route.Backend, string, string) {
		be.Status = http.StatusInternalServerError
		be.Message = "500 internal server error: " + msg
		return be, reason, msg
	}
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Service") {
		return bad(string(gwv1.RouteReasonInvalidKind), fmt.Sprintf("backend %s is not a core Service", ref.Name))
	}
	if ns != r.Namespace && !b.grantAllows("HTTPRoute", r.Namespace, "", "Service", ns, string(ref.Name)) {
		return bad(string(gwv1.RouteReasonRefNotPermitted), fmt.Sprintf("no ReferenceGrant in %s lets this route use Service %s", ns, ref.Name))
	}
	if port == 0 {
		return bad(string(gwv1.RouteReasonBackendNotFound), fmt.Sprintf("backend %s has no port", ref.Name))
	}
	addrs, err := b.resolveService(ns, string(ref.Name), port, "")
	if err != nil {
		return bad(string(gwv1.RouteReasonBackendNotFound), err.Error())
	}
	be.Addrs = addrs
	return be, "", ""
}
