package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func pool(ca *CA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func verify(t *testing.T, ca *CA, c *tls.Certificate, name string) error {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool(ca)})
	return err
}

func TestCARoundTrip(t *testing.T) {
	ca := newCA(t)
	again, err := LoadCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cert.Equal(ca.Cert) {
		t.Error("reloaded CA differs")
	}
	// A leaf issued by the reloaded CA verifies against the original.
	c, err := again.Issue("app.example", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, ca, c, "app.example"); err != nil {
		t.Error(err)
	}
	if _, err := LoadCA(ca.CertPEM, []byte("junk")); err == nil {
		t.Error("LoadCA accepted a junk key")
	}
	leafPEM, leafKey := pemOf(t, c)
	if _, err := LoadCA(leafPEM, leafKey); err == nil {
		t.Error("LoadCA accepted a leaf certificate")
	}
}

func TestIssue(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	c, err := ca.Issue("app.example", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, ca, c, "app.example"); err != nil {
		t.Error(err)
	}
	if err := verify(t, ca, c, "other.example"); err == nil {
		t.Error("app.example's certificate verified for other.example")
	}
	if d := c.Leaf.NotAfter.Sub(now); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("validity %s, want a year", d)
	}
	local, err := ca.Issue("", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, ca, local, "localhost"); err != nil {
		t.Error(err)
	}
	if err := verify(t, ca, local, "127.0.0.1"); err != nil {
		t.Error(err)
	}
	ip, err := ca.Issue("10.1.2.3", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, ca, ip, "10.1.2.3"); err != nil {
		t.Error(err)
	}
}

func pemOf(t *testing.T, c *tls.Certificate) ([]byte, []byte) {
	t.Helper()
	certPEM := pemEncode("CERTIFICATE", c.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, pemEncode("PRIVATE KEY", keyDER)
}

func TestStoreSNI(t *testing.T) {
	ca := newCA(t)
	other := newCA(t) // stands for a user's own CA
	store := NewStore(ca)

	given, _ := other.Issue("given.example", time.Now())
	certPEM, keyPEM := pemOf(t, given)
	parsed, err := ParsePair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	wild, _ := other.Issue("*.wild.example", time.Now())
	wcPEM, wkPEM := pemOf(t, wild)
	wparsed, err := ParsePair(wcPEM, wkPEM)
	if err != nil {
		t.Fatal(err)
	}
	declared, _ := other.Issue("declared-only.example", time.Now())
	n := Names{}
	n.Add(parsed)                            // by its own names
	n.Add(wparsed)                           // "*.wild.example"
	n.Add(declared, "Host.Declared.Example") // by the Ingress's tls.hosts
	store.SetNames(n)

	get := func(name string) *tls.Certificate {
		c, err := store.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if get("given.example") != parsed {
		t.Error("given.example did not get its Secret's certificate")
	}
	if get("a.wild.example") != wparsed {
		t.Error("a.wild.example did not get the wildcard certificate")
	}
	if get("host.declared.example") != declared {
		t.Error("a declared host did not get its certificate")
	}
	// Two labels under the wildcard: not covered, so issued.
	deep := get("a.b.wild.example")
	if deep == wparsed {
		t.Error("a.b.wild.example got the one-label wildcard")
	}
	if err := verify(t, ca, deep, "a.b.wild.example"); err != nil {
		t.Error(err)
	}
	issued := get("app.example")
	if err := verify(t, ca, issued, "app.example"); err != nil {
		t.Error(err)
	}
	if get("APP.example.") != issued {
		t.Error("the issued certificate is not cached (case and trailing dot ignored)")
	}
	if err := verify(t, ca, get(""), "127.0.0.1"); err != nil {
		t.Errorf("no SNI: %v", err)
	}

	// The cache renews a certificate close to its end.
	store.Now = func() time.Time { return time.Now().AddDate(1, 0, 0) }
	if get("app.example") == issued {
		t.Error("an expiring certificate was served from the cache")
	}
}

// A real handshake, as curl --cacert ca.crt --resolve app.example:443:127.0.0.1 does.
func TestHandshake(t *testing.T) {
	ca := newCA(t)
	store := NewStore(ca)
	// As main.go serves: no Certificates, so GetCertificate answers
	// handshakes without SNI too (httptest's StartTLS would add its own).
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Proto)
		}),
		TLSConfig: &tls.Config{GetCertificate: store.GetCertificate, NextProtos: []string{"h2", "http/1.1"}},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	addr := ln.Addr().String()
	for _, name := range []string{"app.example", "localhost", ""} {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool(ca)},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}
		host := name
		if host == "" {
			host = "127.0.0.1" // no SNI is sent for an IP address
		}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + net.JoinHostPort(host, "443") + "/")
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "HTTP/2.0" {
			t.Errorf("%q: protocol %s, want HTTP/2.0", name, b)
		}
	}
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
