// Package controller watches Ingresses and Gateway API objects through
// informers, translates them into a route.Table and a certs.Names on every
// change (debounced), and writes their statuses.
package controller

import (
	"context"
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gwinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
	gwlisters "sigs.k8s.io/gateway-api/pkg/client/listers/apis/v1"

	"minilab/addons/ingress/certs"
	"minilab/addons/ingress/route"
)

// Config is what the flags give.
type Config struct {
	IngressController string
	GatewayController string
	PublishService    string // namespace/name, or ""
	GatewayHTTPPort   int
	GatewayHTTPSPort  int
}

// Controller keeps the routing table and the certificates up to date.
type Controller struct {
	cfg    Config
	kube   kubernetes.Interface
	gw     gwclient.Interface
	tables *route.Tables
	certs  *certs.Store

	ingresses      netlisters.IngressLister
	ingressClasses netlisters.IngressClassLister
	services       corelisters.ServiceLister
	slices         discoverylisters.EndpointSliceLister
	secrets        corelisters.SecretLister
	namespaces     corelisters.NamespaceLister
	synced         []cache.InformerSynced

	gwMu           sync.Mutex // guards the Gateway API listers, set once the CRDs are there
	gwClasses      gwlisters.GatewayClassLister
	gateways       gwlisters.GatewayLister
	httpRoutes     gwlisters.HTTPRouteLister
	referenceGrant gwlisters.ReferenceGrantLister

	kick  chan struct{}
	ready atomic.Bool
	// gatewayPoll is how often the Gateway API is looked for while absent.
	gatewayPoll time.Duration

	status *statusWriter

	errMu      sync.Mutex
	lastErrors map[string]bool
}

// New makes a controller; Run starts it.
func New(cfg Config, kube kubernetes.Interface, gw gwclient.Interface, tables *route.Tables, store *certs.Store) *Controller {
	c := &Controller{
		cfg:         cfg,
		kube:        kube,
		gw:          gw,
		tables:      tables,
		certs:       store,
		kick:        make(chan struct{}, 1),
		lastErrors:  map[string]bool{},
		gatewayPoll: 30 * time.Second,
	}
	c.status = newStatusWriter(c)
	return c
}

// Ready reports whether the informers have synced and the first table is built.
func (c *Controller) Ready() bool { return c.ready.Load() }

func (c *Controller) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Controller) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.trigger() },
		UpdateFunc: func(any, any) { c.trigger() },
		DeleteFunc: func(any) { c.trigger() },
	}
}

// Run starts the informers and rebuilds the table until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(c.kube, 0)
	secretFactory := informers.NewSharedInformerFactoryWithOptions(c.kube, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()
		}))
	h := c.handler()
	add := func(inf cache.SharedIndexInformer) {
		if _, err := inf.AddEventHandler(h); err != nil {
			panic(err) // only when the informer has stopped
		}
		c.synced = append(c.synced, inf.HasSynced)
	}
	ing := factory.Networking().V1().Ingresses()
	add(ing.Informer())
	c.ingresses = ing.Lister()
	ic := factory.Networking().V1().IngressClasses()
	add(ic.Informer())
	c.ingressClasses = ic.Lister()
	svc := factory.Core().V1().Services()
	add(svc.Informer())
	c.services = svc.Lister()
	eps := factory.Discovery().V1().EndpointSlices()
	add(eps.Informer())
	c.slices = eps.Lister()
	ns := factory.Core().V1().Namespaces()
	add(ns.Informer())
	c.namespaces = ns.Lister()
	sec := secretFactory.Core().V1().Secrets()
	add(sec.Informer())
	c.secrets = sec.Lister()

	gwFactory, gwSynced, installGateway := c.gatewayInformers()
	factory.Start(ctx.Done())
	secretFactory.Start(ctx.Done())
	if gwFactory != nil {
		gwFactory.Start(ctx.Done())
	} else {
		go c.waitForGatewayAPI(ctx)
	}
	synced := append([]cache.InformerSynced{}, c.synced...)
	synced = append(synced, gwSynced...)
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("informers did not sync: %w", ctx.Err())
	}
	if installGateway != nil {
		installGateway()
	}
	log.Printf("informers synced")
	go c.status.run(ctx)

	c.rebuild()
	c.ready.Store(true)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		}
		// Debounce: let a burst of events settle.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		select {
		case <-c.kick:
		default:
		}
		c.rebuild()
	}
}

var gatewayResources = []string{"gatewayclasses", "gateways", "httproutes", "referencegrants"}

// gatewayAPIServed reports whether the Gateway API v1 resources we watch are
// served.
func (c *Controller) gatewayAPIServed() (bool, string) {
	list, err := c.kube.Discovery().ServerResourcesForGroupVersion("gateway.networking.k8s.io/v1")
	if err != nil {
		if apierrors.IsNotFound(err) {
			return false, "gateway.networking.k8s.io/v1 is not served"
		}
		return false, err.Error()
	}
	have := map[string]bool{}
	for _, r := range list.APIResources {
		have[r.Name] = true
	}
	var missing []string
	for _, r := range gatewayResources {
		if !have[r] {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return false, "gateway.networking.k8s.io/v1 lacks " + strings.Join(missing, ", ")
	}
	return true, ""
}

// gatewayInformers sets up the Gateway API informers when the CRDs are there.
func (c *Controller) gatewayInformers() (gwinformers.SharedInformerFactory, []cache.InformerSynced, func()) {
	ok, why := c.gatewayAPIServed()
	if !ok {
		log.Printf("Gateway API not available (%s): serving Ingresses only, checking again every %s", why, c.gatewayPoll)
		return nil, nil, nil
	}
	return c.setupGatewayInformers()
}

// setupGatewayInformers makes the Gateway API informers; install, called
// once they have synced, hands their listers to the rebuilds (so no rebuild
// sees half-filled caches).
func (c *Controller) setupGatewayInformers() (f gwinformers.SharedInformerFactory, synced []cache.InformerSynced, install func()) {
	f = gwinformers.NewSharedInformerFactory(c.gw, 0)
	v1 := f.Gateway().V1()
	h := c.handler()
	for _, inf := range []cache.SharedIndexInformer{v1.GatewayClasses().Informer(), v1.Gateways().Informer(), v1.HTTPRoutes().Informer(), v1.ReferenceGrants().Informer()} {
		if _, err := inf.AddEventHandler(h); err != nil {
			panic(err)
		}
		synced = append(synced, inf.HasSynced)
	}
	install = func() {
		c.gwMu.Lock()
		c.gwClasses = v1.GatewayClasses().Lister()
		c.gateways = v1.Gateways().Lister()
		c.httpRoutes = v1.HTTPRoutes().Lister()
		c.referenceGrant = v1.ReferenceGrants().Lister()
		c.gwMu.Unlock()
	}
	log.Printf("Gateway API v1 found: watching GatewayClasses, Gateways, HTTPRoutes, ReferenceGrants")
	return f, synced, install
}

// waitForGatewayAPI starts the Gateway API informers once the CRDs appear.
func (c *Controller) waitForGatewayAPI(ctx context.Context) {
	tick := time.NewTicker(c.gatewayPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if ok, _ := c.gatewayAPIServed(); !ok {
			continue
		}
		log.Printf("Gateway API now served")
		f, synced, install := c.setupGatewayInformers()
		f.Start(ctx.Done())
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			install()
			c.trigger()
		}
		return
	}
}

// gatewayListers returns the Gateway API listers, or nils before the CRDs.
func (c *Controller) gatewayListers() (gwlisters.GatewayClassLister, gwlisters.GatewayLister, gwlisters.HTTPRouteLister, gwlisters.ReferenceGrantLister) {
	c.gwMu.Lock()
	defer c.gwMu.Unlock()
	return c.gwClasses, c.gateways, c.httpRoutes, c.referenceGrant
}

// build is one translation's working state.
type build struct {
	c      *Controller
	table  *route.Table
	names  certs.Names
	errors []string
	plan   *statusPlan
}

func (b *build) errorf(format string, args ...any) {
	b.errors = append(b.errors, fmt.Sprintf(format, args...))
}

// rebuild translates the caches into a new table and swaps it in.
func (c *Controller) rebuild() {
	start := time.Now()
	b := &build{
		c:     c,
		table: route.NewTable(c.cfg.GatewayHTTPPort, c.cfg.GatewayHTTPSPort),
		names: certs.Names{},
		plan:  &statusPlan{},
	}
	b.plan.addresses = c.publishedAddresses()
	gws, routes := b.buildGateway()
	ings := b.buildIngresses()
	b.table.Sort()
	c.tables.Store(b.table)
	c.certs.SetNames(b.names)
	log.Printf("routing table built in %s: %d ingresses, %d gateways, %d httproutes, %d host certificates",
		time.Since(start).Round(time.Microsecond), ings, gws, routes, len(b.names))
	c.logErrors(b.errors)
	c.status.submit(b.plan)
}

// logErrors logs the translation errors not logged by the previous rebuild.
func (c *Controller) logErrors(errs []string) {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	now := map[string]bool{}
	sort.Strings(errs)
	for _, e := range errs {
		if !c.lastErrors[e] && !now[e] {
			log.Printf("error: %s", e)
		}
		now[e] = true
	}
	c.lastErrors = now
}

// olderFirst orders objects by creation time, then namespace/name.
func olderFirst(a, b metav1.Object) bool {
	ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	if a.GetNamespace() != b.GetNamespace() {
		return a.GetNamespace() < b.GetNamespace()
	}
	return a.GetName() < b.GetName()
}

func key(o metav1.Object) string { return o.GetNamespace() + "/" + o.GetName() }
