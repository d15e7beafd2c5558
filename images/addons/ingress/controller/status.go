package controller

import (
	"context"
	"log"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// statusPlan is the statuses one rebuild wants. Gateway API objects are
// deep copies with the wanted status; Ingresses are the cached objects (their
// wanted status is addresses).
type statusPlan struct {
	addresses []corev1.LoadBalancerIngress
	ingresses []*networkingv1.Ingress
	classes   []*gwv1.GatewayClass
	gateways  []*gwv1.Gateway
	routes    []*gwv1.HTTPRoute
}

// publishedAddresses reads the --publish-service Service's load-balancer
// addresses.
func (c *Controller) publishedAddresses() []corev1.LoadBalancerIngress {
	if c.cfg.PublishService == "" {
		return nil
	}
	ns, name, ok := strings.Cut(c.cfg.PublishService, "/")
	if !ok {
		return nil
	}
	svc, err := c.services.Services(ns).Get(name)
	if err != nil {
		return nil
	}
	return svc.Status.LoadBalancer.Ingress
}

// statusWriter writes the latest plan's statuses, one plan at a time, off
// the rebuild path (requests never wait on it).
type statusWriter struct {
	c       *Controller
	mu      sync.Mutex
	pending *statusPlan
	wake    chan struct{}
}

func newStatusWriter(c *Controller) *statusWriter {
	return &statusWriter{c: c, wake: make(chan struct{}, 1)}
}

func (s *statusWriter) submit(p *statusPlan) {
	s.mu.Lock()
	s.pending = p
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *statusWriter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		p := s.pending
		s.pending = nil
		s.mu.Unlock()
		if p != nil {
			s.write(ctx, p)
		}
	}
}

// handle logs a failed write; a conflict means a newer object is on its way
// through the informer, whose rebuild writes again.
func (s *statusWriter) handle(what string, err error) {
	if err == nil {
		return
	}
	if apierrors.IsConflict(err) {
		s.c.trigger()
		return
	}
	if apierrors.IsNotFound(err) {
		return
	}
	log.Printf("error: writing the status of %s: %v", what, err)
	// Try again later.
	time.AfterFunc(5*time.Second, s.c.trigger)
}

func ingressAddresses(lb []corev1.LoadBalancerIngress) []networkingv1.IngressLoadBalancerIngress {
	var out []networkingv1.IngressLoadBalancerIngress
	for _, a := range lb {
		out = append(out, networkingv1.IngressLoadBalancerIngress{IP: a.IP, Hostname: a.Hostname})
	}
	return out
}

func (s *statusWriter) write(ctx context.Context, p *statusPlan) {
	c := s.c
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if c.cfg.PublishService != "" {
		want := ingressAddresses(p.addresses)
		for _, ing := range p.ingresses {
			if equality.Semantic.DeepEqual(ing.Status.LoadBalancer.Ingress, want) {
				continue
			}
			up := ing.DeepCopy()
			up.Status.LoadBalancer.Ingress = want
			_, err := c.kube.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(cctx, up, metav1.UpdateOptions{})
			s.handle("ingress "+key(ing), err)
		}
	}
	classes, gateways, routes, _ := c.gatewayListers()
	if classes == nil {
		return
	}
	for _, want := range p.classes {
		cur, err := classes.Get(want.Name)
		if err != nil || cur.ResourceVersion != want.ResourceVersion || sameConditions(cur.Status.Conditions, want.Status.Conditions) {
			continue
		}
		_, err = c.gw.GatewayV1().GatewayClasses().UpdateStatus(cctx, want, metav1.UpdateOptions{})
		s.handle("gatewayclass "+want.Name, err)
	}
	for _, want := range p.gateways {
		cur, err := gateways.Gateways(want.Namespace).Get(want.Name)
		if err != nil || cur.ResourceVersion != want.ResourceVersion || sameGatewayStatus(&cur.Status, &want.Status) {
			continue
		}
		_, err = c.gw.GatewayV1().Gateways(want.Namespace).UpdateStatus(cctx, want, metav1.UpdateOptions{})
		s.handle("gateway "+key(want), err)
	}
	for _, want := range p.routes {
		cur, err := routes.HTTPRoutes(want.Namespace).Get(want.Name)
		if err != nil || cur.ResourceVersion != want.ResourceVersion || sameRouteStatus(&cur.Status, &want.Status) {
			continue
		}
		_, err = c.gw.GatewayV1().HTTPRoutes(want.Namespace).UpdateStatus(cctx, want, metav1.UpdateOptions{})
		s.handle("httproute "+key(want), err)
	}
}

// sameConditions compares conditions without their lastTransitionTime
// (mergeConditions keeps it for unchanged ones; this makes sure).
func sameConditions(a, b []metav1.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.LastTransitionTime, y.LastTransitionTime = metav1.Time{}, metav1.Time{}
		if x != y {
			return false
		}
	}
	return true
}

func sameGatewayStatus(a, b *gwv1.GatewayStatus) bool {
	if !sameConditions(a.Conditions, b.Conditions) || !equality.Semantic.DeepEqual(a.Addresses, b.Addresses) || len(a.Listeners) != len(b.Listeners) {
		return false
	}
	for i := range a.Listeners {
		x, y := a.Listeners[i], b.Listeners[i]
		if x.Name != y.Name || x.AttachedRoutes != y.AttachedRoutes || !equality.Semantic.DeepEqual(x.SupportedKinds, y.SupportedKinds) ||
			!sameConditions(x.Conditions, y.Conditions) {
			return false
		}
	}
	return true
}

func sameRouteStatus(a, b *gwv1.HTTPRouteStatus) bool {
	if len(a.Parents) != len(b.Parents) {
		return false
	}
	for i := range a.Parents {
		x, y := a.Parents[i], b.Parents[i]
		if !parentRefEqual(x.ParentRef, y.ParentRef) || x.ControllerName != y.ControllerName || !sameConditions(x.Conditions, y.Conditions) {
			return false
		}
	}
	return true
}
