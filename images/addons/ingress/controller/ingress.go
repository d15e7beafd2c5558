package controller

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"minilab/addons/ingress/certs"
	"minilab/addons/ingress/route"
)

const (
	legacyClassAnnotation  = "kubernetes.io/ingress.class"
	defaultClassAnnotation = "ingressclass.kubernetes.io/is-default-class"
)

// resolveService finds where a Service port is served: the ClusterIP, the
// ready endpoints of a headless Service, or an ExternalName. The error text
// is for the client and the logs.
func (b *build) resolveService(ns, name string, number int32, portName string) ([]string, error) {
	svc, err := b.c.services.Services(ns).Get(name)
	if err != nil {
		return nil, fmt.Errorf("service %s/%s not found", ns, name)
	}
	var port *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (number != 0 && p.Port == number) || (number == 0 && portName != "" && p.Name == portName) {
			port = p
			break
		}
	}
	if port == nil {
		want := portName
		if number != 0 {
			want = strconv.Itoa(int(number))
		}
		if svc.Spec.Type == corev1.ServiceTypeExternalName && number != 0 {
			return []string{net.JoinHostPort(svc.Spec.ExternalName, want)}, nil
		}
		return nil, fmt.Errorf("service %s/%s has no port %s", ns, name, want)
	}
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return []string{net.JoinHostPort(svc.Spec.ExternalName, strconv.Itoa(int(port.Port)))}, nil
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		return b.endpoints(svc, port), nil
	case svc.Spec.ClusterIP == "":
		return nil, fmt.Errorf("service %s/%s has no cluster IP", ns, name)
	default:
		return []string{net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port.Port)))}, nil
	}
}

// endpoints lists the ready endpoints of a headless Service's port.
func (b *build) endpoints(svc *corev1.Service, port *corev1.ServicePort) []string {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
	slices, err := b.c.slices.EndpointSlices(svc.Namespace).List(sel)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range slices {
		var target int32
		for _, p := range s.Ports {
			if p.Port == nil {
				continue
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			if proto == corev1.ProtocolTCP && name == port.Name {
				target = *p.Port
				break
			}
		}
		if target == 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if len(ep.Addresses) == 0 {
				continue
			}
			a := net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(target)))
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ingressClassesOurs returns the names of the IngressClasses of our
// controller, and whether one of them is the default class.
func (b *build) ingressClassesOurs() (map[string]bool, bool) {
	classes, _ := b.c.ingressClasses.List(labels.Everything())
	ours := map[string]bool{}
	def := false
	for _, ic := range classes {
		if ic.Spec.Controller != b.c.cfg.IngressController {
			continue
		}
		ours[ic.Name] = true
		if ic.Annotations[defaultClassAnnotation] == "true" {
			def = true
		}
	}
	return ours, def
}

// served reports whether an Ingress is ours.
func served(ing *networkingv1.Ingress, ours map[string]bool, haveDefault bool) bool {
	if ing.Spec.IngressClassName != nil {
		return ours[*ing.Spec.IngressClassName]
	}
	if name, ok := ing.Annotations[legacyClassAnnotation]; ok {
		return ours[name]
	}
	return haveDefault
}

func ingressBackendAction(b *build, ing *networkingv1.Ingress, be *networkingv1.IngressBackend) *route.Action {
	owner := "ingress " + key(ing)
	a := &route.Action{Owner: owner}
	if be.Service == nil {
		a.Status = http.StatusServiceUnavailable
		a.Message = "503 service unavailable: resource backends are not supported"
		b.errorf("%s: a resource backend is not supported", owner)
		return a
	}
	svc := be.Service
	name := fmt.Sprintf("%s/%s:%s", ing.Namespace, svc.Name, portString(svc.Port.Number, svc.Port.Name))
	addrs, err := b.resolveService(ing.Namespace, svc.Name, svc.Port.Number, svc.Port.Name)
	backend := &route.Backend{Name: name, Addrs: addrs, Weight: 1}
	if err != nil {
		backend.Status = http.StatusServiceUnavailable
		backend.Message = "503 service unavailable: " + err.Error()
		b.errorf("%s: %v", owner, err)
	}
	a.Backends = []*route.Backend{backend}
	return a
}

func portString(n int32, name string) string {
	if n != 0 {
		return strconv.Itoa(int(n))
	}
	return name
}

// buildIngresses adds the served Ingresses' rules and certificates; it
// returns how many are served.
func (b *build) buildIngresses() int {
	all, _ := b.c.ingresses.List(labels.Everything())
	ours, haveDefault := b.ingressClassesOurs()
	var list []*networkingv1.Ingress
	for _, ing := range all {
		if served(ing, ours, haveDefault) {
			list = append(list, ing)
		}
	}
	sort.Slice(list, func(i, j int) bool { return olderFirst(list[i], list[j]) })
	servers := []*route.Server{b.table.HTTP, b.table.HTTPS}
	for _, ing := range list {
		b.plan.ingresses = append(b.plan.ingresses, ing)
		for _, t := range ing.Spec.TLS {
			if t.SecretName == "" {
				continue
			}
			sec, err := b.c.secrets.Secrets(ing.Namespace).Get(t.SecretName)
			if err != nil {
				b.errorf("ingress %s: TLS secret %s not found (or not of type kubernetes.io/tls)", key(ing), t.SecretName)
				continue
			}
			cert, err := certs.ParsePair(sec.Data[corev1.TLSCertKey], sec.Data[corev1.TLSPrivateKeyKey])
			if err != nil {
				b.errorf("ingress %s: TLS secret %s: %v", key(ing), t.SecretName, err)
				continue
			}
			b.names.Add(cert, t.Hosts...)
		}
		if be := ing.Spec.DefaultBackend; be != nil {
			for _, s := range servers {
				if s.IngressDefault == nil {
					s.IngressDefault = ingressBackendAction(b, ing, be)
				}
			}
		}
		idx := 0
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				r := &route.Rule{
					PathKind: route.PathPrefix,
					Path:     p.Path,
					Created:  ing.CreationTimestamp.Time,
					Owner:    key(ing),
					Index:    idx,
					Action:   ingressBackendAction(b, ing, &p.Backend),
				}
				idx++
				if r.Path == "" {
					r.Path = "/"
				}
				if p.PathType != nil && *p.PathType == networkingv1.PathTypeExact {
					r.PathKind = route.PathExact
				}
				for _, s := range servers {
					s.AddIngress(rule.Host, r)
				}
			}
		}
	}
	return len(list)
}
