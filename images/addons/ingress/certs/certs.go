// Package certs holds the controller's certificate authority, the
// certificates given by Ingresses and Gateways (by server name), and issues
// a leaf certificate for any other server name on the fly.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CA is a certificate authority that signs leaf certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// newKey makes an ECDSA P-256 key and a random 127-bit serial number for
// the certificate that goes with it.
func newKey() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	return key, sn, nil
}

// NewCA makes a self-signed ECDSA P-256 CA valid for ten years.
func NewCA(commonName string, now time.Time) (*CA, error) {
	key, sn, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"minilab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return LoadCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// LoadCA reads a CA from its PEM certificate and key.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key pair: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("the CA certificate is not a CA")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("the CA key cannot sign")
	}
	return &CA{Cert: cert, Key: signer, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// Issue makes a leaf certificate for name (a DNS name or an IP address),
// valid for a year; "" gives one for localhost, 127.0.0.1 and ::1.
func (ca *CA) Issue(name string, now time.Time) (*tls.Certificate, error) {
	key, sn, err := newKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if notAfter := ca.Cert.NotAfter; tmpl.NotAfter.After(notAfter) {
		tmpl.NotAfter = notAfter
	}
	switch ip := net.ParseIP(name); {
	case name == "":
		tmpl.Subject.CommonName = "localhost"
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	case ip != nil:
		tmpl.Subject.CommonName = name
		tmpl.IPAddresses = []net.IP{ip}
	default:
		tmpl.Subject.CommonName = name
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, ca.Cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// ParsePair reads a certificate chain and key (a kubernetes.io/tls Secret's
// tls.crt and tls.key).
func ParsePair(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if pair.Leaf == nil {
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, err
		}
		pair.Leaf = leaf
	}
	return &pair, nil
}

// Names are the server names a certificate is used for: exact names and
// wildcards ("*.example.com": one label).
type Names map[string]*tls.Certificate

// Add registers cert for each host; with no hosts, for the names in the
// certificate. The first registration of a name wins.
func (n Names) Add(cert *tls.Certificate, hosts ...string) {
	if len(hosts) == 0 && cert.Leaf != nil {
		hosts = append(hosts, cert.Leaf.DNSNames...)
		for _, ip := range cert.Leaf.IPAddresses {
			hosts = append(hosts, ip.String())
		}
	}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if h == "" {
			continue
		}
		if _, ok := n[h]; !ok {
			n[h] = cert
		}
	}
}

func (n Names) lookup(name string) *tls.Certificate {
	if c := n[name]; c != nil {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := n["*"+name[i:]]; c != nil {
			return c
		}
	}
	return nil
}

// Store answers TLS handshakes: a given certificate for the server name,
// else one issued by the CA (cached).
type Store struct {
	CA    *CA
	Now   func() time.Time
	names atomic.Pointer[Names]

	mu    sync.Mutex
	cache map[string]*tls.Certificate
}

// maxCached bounds the issued certificates kept (the cache is emptied when
// it is full: a client making up names cannot grow it without bound).
const maxCached = 1024

// NewStore makes a store for a CA.
func NewStore(ca *CA) *Store {
	s := &Store{CA: ca, Now: time.Now, cache: map[string]*tls.Certificate{}}
	s.SetNames(Names{})
	return s
}

// SetNames swaps in the certificates given by Ingresses and Gateways.
func (s *Store) SetNames(n Names) { s.names.Store(&n) }

// GetCertificate is a tls.Config's GetCertificate.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := (*s.names.Load()).lookup(name); c != nil {
			return c, nil
		}
	}
	return s.issued(name)
}

func (s *Store) issued(name string) (*tls.Certificate, error) {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cache[name]; c != nil && now.Before(c.Leaf.NotAfter.Add(-24*time.Hour)) {
		return c, nil
	}
	c, err := s.CA.Issue(name, now)
	if err != nil {
		return nil, err
	}
	if len(s.cache) >= maxCached {
		s.cache = map[string]*tls.Certificate{}
	}
	s.cache[name] = c
	return c, nil
}
