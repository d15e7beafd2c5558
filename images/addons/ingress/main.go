// Command ingress-controller is minilab's ingress controller: it serves
// Ingresses (networking.k8s.io/v1) and Gateway API HTTPRoutes
// (gateway.networking.k8s.io/v1) with Go's reverse proxy, and issues
// certificates for any server name from its own CA.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	gwclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"minilab/addons/ingress/certs"
	"minilab/addons/ingress/controller"
	"minilab/addons/ingress/route"
)

// version is set at build time (-X main.version=vX.Y.Z).
var version = "v0.0.0-dev"

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	fs := flag.NewFlagSet("ingress-controller", flag.ExitOnError)
	showVersion := fs.Bool("version", false, "print the version and exit")
	httpPort := fs.Int("http-port", 8080, "port serving HTTP")
	httpsPort := fs.Int("https-port", 8443, "port serving HTTPS")
	healthPort := fs.Int("health-port", 10254, "port serving /healthz and /readyz")
	ingressController := fs.String("controller", "minilab.io/ingress-controller", "IngressClass spec.controller served")
	gatewayController := fs.String("gateway-controller", "minilab.io/gateway-controller", "GatewayClass spec.controllerName served")
	namespace := fs.String("namespace", os.Getenv("POD_NAMESPACE"), "namespace of the CA Secret (default: $POD_NAMESPACE)")
	caSecret := fs.String("ca-secret", "ingress-minilab-ca", "Secret holding the CA (ca.crt, ca.key), made if absent")
	publishService := fs.String("publish-service", "", "NAMESPACE/NAME of the Service whose load-balancer addresses go into Ingress and Gateway statuses")
	gatewayHTTPPort := fs.Int("gateway-http-port", 80, "Gateway listener port served as HTTP")
	gatewayHTTPSPort := fs.Int("gateway-https-port", 443, "Gateway listener port served as HTTPS")
	publicHTTPPort := fs.Int("public-http-port", 0, "the port clients reach the HTTP listener at, named in redirects (default: --gateway-http-port)")
	publicHTTPSPort := fs.Int("public-https-port", 0, "the port clients reach the HTTPS listener at, named in redirects (default: --gateway-https-port)")
	accessLog := fs.Bool("access-log", false, "log every request")
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Printf("minilab ingress-controller %s\n", version)
		return
	}
	if fs.NArg() > 0 {
		log.Fatalf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *namespace == "" {
		log.Fatalf("--namespace is not set and POD_NAMESPACE is empty")
	}
	if *publishService != "" && !strings.Contains(*publishService, "/") {
		log.Fatalf("--publish-service must be NAMESPACE/NAME, not %q", *publishService)
	}
	log.Printf("minilab ingress-controller %s starting: http :%d, https :%d, health :%d, controller %s, gateway controller %s, publish service %q",
		version, *httpPort, *httpsPort, *healthPort, *ingressController, *gatewayController, *publishService)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Fatalf("in-cluster config: %v", err)
	}
	cfg.UserAgent = "minilab-ingress-controller/" + version
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatalf("client: %v", err)
	}
	gw, err := gwclient.NewForConfig(cfg)
	if err != nil {
		log.Fatalf("gateway client: %v", err)
	}

	ca, err := controller.EnsureCA(ctx, kube, *namespace, *caSecret)
	if err != nil {
		log.Fatalf("CA: %v", err)
	}
	store := certs.NewStore(ca)
	tables := &route.Tables{}
	tables.Store(route.NewTable(*gatewayHTTPPort, *gatewayHTTPSPort))

	ctrl := controller.New(controller.Config{
		IngressController: *ingressController,
		GatewayController: *gatewayController,
		PublishService:    *publishService,
		GatewayHTTPPort:   *gatewayHTTPPort,
		GatewayHTTPSPort:  *gatewayHTTPSPort,
	}, kube, gw, tables, store)

	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ctrl.Ready() {
			http.Error(w, "not ready: informers syncing", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})

	public := map[int]int{}
	if *publicHTTPPort != 0 {
		public[*gatewayHTTPPort] = *publicHTTPPort
	}
	if *publicHTTPSPort != 0 {
		public[*gatewayHTTPSPort] = *publicHTTPSPort
	}

	errc := make(chan error, 4)
	servers := []*http.Server{
		{
			Addr:              ":" + strconv.Itoa(*healthPort),
			Handler:           health,
			ReadHeaderTimeout: 10 * time.Second,
		},
		{
			Addr:              ":" + strconv.Itoa(*httpPort),
			Handler:           publicHandler(tables, false, *accessLog, public),
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       120 * time.Second,
		},
		{
			Addr:              ":" + strconv.Itoa(*httpsPort),
			Handler:           publicHandler(tables, true, *accessLog, public),
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       120 * time.Second,
			TLSConfig: &tls.Config{
				MinVersion:     tls.VersionTLS12,
				GetCertificate: store.GetCertificate,
				NextProtos:     []string{"h2", "http/1.1"},
			},
		},
	}
	for _, s := range servers {
		ln, err := net.Listen("tcp", s.Addr)
		if err != nil {
			log.Fatalf("listen %s: %v", s.Addr, err)
		}
		go func(s *http.Server, ln net.Listener) {
			var err error
			if s.TLSConfig != nil {
				err = s.ServeTLS(ln, "", "")
			} else {
				err = s.Serve(ln)
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("server %s: %w", s.Addr, err)
			}
		}(s, ln)
	}
	go func() { errc <- ctrl.Run(ctx) }()

	code := 0
	select {
	case err := <-errc:
		if err != nil {
			log.Printf("error: %v", err)
		}
		if ctx.Err() == nil {
			code = 1 // a server or the controller stopped on its own
		}
	case <-ctx.Done():
	}
	log.Printf("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	os.Exit(code)
}

// publicHandler is a route handler whose redirects name the ports clients use.
func publicHandler(tables *route.Tables, https, accessLog bool, public map[int]int) *route.Handler {
	h := route.NewHandler(tables, https, accessLog)
	h.PublicPorts = public
	return h
}
