package controller

import (
	"context"
	"fmt"
	"log"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"minilab/addons/ingress/certs"
)

// Keys of the CA Secret.
const (
	CACertKey = "ca.crt"
	CAKeyKey  = "ca.key"
)

// EnsureCA reads the CA from the Secret namespace/name, or makes one and
// creates the Secret when it is absent (another replica's Secret wins a
// race: on AlreadyExists it is read).
func EnsureCA(ctx context.Context, kube kubernetes.Interface, namespace, name string) (*certs.CA, error) {
	secrets := kube.CoreV1().Secrets(namespace)
	for attempt := 0; ; attempt++ {
		sec, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			ca, err := certs.LoadCA(sec.Data[CACertKey], sec.Data[CAKeyKey])
			if err != nil {
				return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
			}
			log.Printf("CA read from secret %s/%s (%s, valid until %s)", namespace, name, ca.Cert.Subject.CommonName, ca.Cert.NotAfter.Format(time.DateOnly))
			return ca, nil
		}
		if !apierrors.IsNotFound(err) {
			if attempt < 10 && ctx.Err() == nil {
				log.Printf("error: reading secret %s/%s: %v (trying again)", namespace, name, err)
				time.Sleep(2 * time.Second)
				continue
			}
			return nil, fmt.Errorf("reading secret %s/%s: %w", namespace, name, err)
		}
		ca, err := certs.NewCA("minilab ingress CA", time.Now())
		if err != nil {
			return nil, err
		}
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      name,
				Namespace: namespace,
				Labels:    map[string]string{"app.kubernetes.io/managed-by": "minilab-ingress-controller"},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{CACertKey: ca.CertPEM, CAKeyKey: ca.KeyPEM},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("creating secret %s/%s: %w", namespace, name, err)
		}
		log.Printf("CA made and stored in secret %s/%s", namespace, name)
		return ca, nil
	}
}
