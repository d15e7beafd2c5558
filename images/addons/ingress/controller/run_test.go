package controller

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"

	"minilab/addons/ingress/certs"
	"minilab/addons/ingress/route"
)

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusUpdates(actions []k8stesting.Action) int {
	n := 0
	for _, a := range actions {
		if a.GetVerb() == "update" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func runObjects() (*fake.Clientset, *gwfake.Clientset) {
	class := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "minilab",
		Annotations: map[string]string{defaultClassAnnotation: "true"}}, Spec: networkingv1.IngressClassSpec{Controller: ourIngress}}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app"}, Spec: networkingv1.IngressSpec{
		Rules: []networkingv1.IngressRule{{Host: "app.example", IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				path("/", networkingv1.PathTypePrefix, ingressBackend("web", 80, ""))}}}}}}}
	web := service("default", "web", "10.0.0.10", corev1.ServicePort{Port: 80})
	web.ResourceVersion = ""
	publish := service("ingress-minilab", "ingress-minilab", "10.0.0.2")
	publish.ResourceVersion = ""
	publish.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.1"}}
	kube := fake.NewClientset(class, ing, web, publish)

	gc := &gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "minilab", Generation: 1}, Spec: gwv1.GatewayClassSpec{ControllerName: ourGateway}}
	g := &gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "gw", Generation: 1}, Spec: gwv1.GatewaySpec{
		GatewayClassName: "minilab", Listeners: []gwv1.Listener{{Name: "http", Port: 80, Protocol: gwv1.HTTPProtocolType}}}}
	port := gwv1.PortNumber(80)
	be := gwv1.HTTPBackendRef{}
	be.Name, be.Port = "web", &port
	r := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "r", Generation: 1}, Spec: gwv1.HTTPRouteSpec{
		CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Name: "gw"}}},
		Hostnames:       []gwv1.Hostname{"gw.example"},
		Rules:           []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{be}}},
	}}
	// The fake's object tracker files objects given to it under a guessed
	// resource ("gatewaies" for Gateway): create the Gateway instead. (The
	// field-managed NewClientset knows no "gateways" resource at all.)
	gw := gwfake.NewSimpleClientset(gc, r) //nolint:staticcheck // see above
	if _, err := gw.GatewayV1().Gateways("default").Create(context.Background(), g, metav1.CreateOptions{}); err != nil {
		panic(err)
	}
	return kube, gw
}

func startController(t *testing.T, kube *fake.Clientset, gw *gwfake.Clientset, tweak ...func(*Controller)) *Controller {
	t.Helper()
	ca, err := certs.NewCA("test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctl := New(Config{IngressController: ourIngress, GatewayController: ourGateway,
		PublishService: "ingress-minilab/ingress-minilab", GatewayHTTPPort: 80, GatewayHTTPSPort: 443},
		kube, gw, &route.Tables{}, certs.NewStore(ca))
	for _, f := range tweak {
		f(ctl)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	eventually(t, "readiness", ctl.Ready)
	return ctl
}

func TestRun(t *testing.T) {
	kube, gw := runObjects()
	kube.Resources = []*metav1.APIResourceList{{GroupVersion: "gateway.networking.k8s.io/v1", APIResources: []metav1.APIResource{
		{Name: "gatewayclasses"}, {Name: "gateways"}, {Name: "httproutes"}, {Name: "referencegrants"}}}}
	ctl := startController(t, kube, gw)
	ctx := context.Background()

	lookupNow := func(host string) string {
		return lookup(ctl.tables.Load().HTTP, "GET", host, "/")
	}
	if got := lookupNow("app.example"); got != "10.0.0.10:80" {
		t.Errorf("app.example: %s", got)
	}
	if got := lookupNow("gw.example"); got != "10.0.0.10:80" {
		t.Errorf("gw.example: %s", got)
	}

	ingressIP := func() string {
		ing, err := kube.NetworkingV1().Ingresses("default").Get(ctx, "app", metav1.GetOptions{})
		if err != nil || len(ing.Status.LoadBalancer.Ingress) != 1 {
			return ""
		}
		return ing.Status.LoadBalancer.Ingress[0].IP
	}
	eventually(t, "the Ingress status", func() bool { return ingressIP() == "127.0.0.1" })
	eventually(t, "the GatewayClass status", func() bool {
		gc, err := gw.GatewayV1().GatewayClasses().Get(ctx, "minilab", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(gc.Status.Conditions, "Accepted")
	})
	eventually(t, "the Gateway status", func() bool {
		g, err := gw.GatewayV1().Gateways("default").Get(ctx, "gw", metav1.GetOptions{})
		return err == nil && meta.IsStatusConditionTrue(g.Status.Conditions, "Programmed") &&
			len(g.Status.Addresses) == 1 && g.Status.Addresses[0].Value == "127.0.0.1" &&
			len(g.Status.Listeners) == 1 && g.Status.Listeners[0].AttachedRoutes == 1
	})
	eventually(t, "the HTTPRoute status", func() bool {
		r, err := gw.GatewayV1().HTTPRoutes("default").Get(ctx, "r", metav1.GetOptions{})
		return err == nil && len(r.Status.Parents) == 1 && meta.IsStatusConditionTrue(r.Status.Parents[0].Conditions, "Accepted") &&
			meta.IsStatusConditionTrue(r.Status.Parents[0].Conditions, "ResolvedRefs")
	})

	// Once converged, rebuilds write nothing.
	time.Sleep(500 * time.Millisecond)
	before := statusUpdates(kube.Actions()) + statusUpdates(gw.Actions())
	ctl.trigger()
	time.Sleep(500 * time.Millisecond)
	if after := statusUpdates(kube.Actions()) + statusUpdates(gw.Actions()); after != before {
		t.Errorf("%d status updates without a change", after-before)
	}

	// The published address changes: the statuses follow.
	svc, _ := kube.CoreV1().Services("ingress-minilab").Get(ctx, "ingress-minilab", metav1.GetOptions{})
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.2"}}
	if _, err := kube.CoreV1().Services("ingress-minilab").UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new Ingress address", func() bool { return ingressIP() == "127.0.0.2" })
	eventually(t, "the new Gateway address", func() bool {
		g, err := gw.GatewayV1().Gateways("default").Get(ctx, "gw", metav1.GetOptions{})
		return err == nil && len(g.Status.Addresses) == 1 && g.Status.Addresses[0].Value == "127.0.0.2"
	})

	// A new Ingress is served within the debounce.
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "new"}, Spec: networkingv1.IngressSpec{
		Rules: []networkingv1.IngressRule{{Host: "new.example", IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				path("/", networkingv1.PathTypePrefix, ingressBackend("web", 80, ""))}}}}}}}
	if _, err := kube.NetworkingV1().Ingresses("default").Create(ctx, ing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new Ingress served", func() bool { return lookupNow("new.example") == "10.0.0.10:80" })
}

// Without the Gateway API CRDs the controller serves Ingresses.
func TestRunWithoutGatewayAPI(t *testing.T) {
	kube, gw := runObjects()
	ctl := startController(t, kube, gw)
	if got := lookup(ctl.tables.Load().HTTP, "GET", "app.example", "/"); got != "10.0.0.10:80" {
		t.Errorf("app.example: %s", got)
	}
	if got := lookup(ctl.tables.Load().HTTP, "GET", "gw.example", "/"); got != "404" {
		t.Errorf("gw.example: %s, want 404 (no Gateway API)", got)
	}
}

// Gateway API CRDs installed after the start are picked up.
func TestGatewayAPILater(t *testing.T) {
	kube, gw := runObjects()
	kube.Resources = []*metav1.APIResourceList{{GroupVersion: "gateway.networking.k8s.io/v1", APIResources: []metav1.APIResource{
		{Name: "gatewayclasses"}, {Name: "gateways"}, {Name: "httproutes"}, {Name: "referencegrants"}}}}
	var installed atomic.Bool
	kube.Fake.PrependReactor("get", "resource", func(k8stesting.Action) (bool, runtime.Object, error) {
		if installed.Load() {
			return false, nil, nil
		}
		return true, nil, apierrors.NewNotFound(schema.GroupResource{}, "gateway.networking.k8s.io/v1")
	})
	ctl := startController(t, kube, gw, func(c *Controller) { c.gatewayPoll = 50 * time.Millisecond })
	if got := lookup(ctl.tables.Load().HTTP, "GET", "gw.example", "/"); got != "404" {
		t.Errorf("gw.example before the CRDs: %s", got)
	}
	installed.Store(true)
	eventually(t, "the HTTPRoute served", func() bool {
		return lookup(ctl.tables.Load().HTTP, "GET", "gw.example", "/") == "10.0.0.10:80"
	})
}

func TestEnsureCA(t *testing.T) {
	kube := fake.NewClientset()
	ctx := context.Background()
	ca, err := EnsureCA(ctx, kube, "ingress-minilab", "ingress-minilab-ca")
	if err != nil {
		t.Fatal(err)
	}
	sec, err := kube.CoreV1().Secrets("ingress-minilab").Get(ctx, "ingress-minilab-ca", metav1.GetOptions{})
	if err != nil || len(sec.Data[CACertKey]) == 0 || len(sec.Data[CAKeyKey]) == 0 {
		t.Fatalf("CA secret: %v %v", sec, err)
	}
	again, err := EnsureCA(ctx, kube, "ingress-minilab", "ingress-minilab-ca")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(ca.Cert) {
		t.Error("a restart made a new CA")
	}
}
