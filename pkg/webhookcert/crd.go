package webhookcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// crdGVR is reached through the dynamic client: the apiextensions clientset would be one
// more module for the sake of a single field.
var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crdView is what matters of the CRD.
type crdView struct {
	found bool
	// webhook: spec.conversion.strategy is Webhook and there is a
	// spec.conversion.webhook.clientConfig, i.e. the API server calls the webhook.
	webhook  bool
	strategy string
	caBundle []byte // spec.conversion.webhook.clientConfig.caBundle, decoded
}

// readCRD reads the CRD from the informer's cache.
func (m *Manager) readCRD() (crdView, error) {
	obj, err := m.crdLister.Get(m.opts.CRDName)
	if apierrors.IsNotFound(err) {
		return crdView{}, nil
	}
	if err != nil {
		return crdView{}, err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return crdView{}, fmt.Errorf("unexpected %T in the CRD cache", obj)
	}
	v := crdView{found: true}
	v.strategy, _, _ = unstructured.NestedString(u.Object, "spec", "conversion", "strategy")
	cc, found, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "conversion", "webhook", "clientConfig")
	_, isMap := cc.(map[string]interface{})
	v.webhook = v.strategy == "Webhook" && found && isMap
	if s, ok, _ := unstructured.NestedString(u.Object, "spec", "conversion", "webhook", "clientConfig", "caBundle"); ok {
		// One that does not decode is as good as none: it gets replaced.
		v.caBundle, _ = base64.StdEncoding.DecodeString(s)
	}
	return v, nil
}

// published reports whether every client of the webhook trusts ca: the CRD's caBundle holds
// it. With no CRD to manage, or a CRD that calls no webhook, nothing can be broken by using
// ca, so it counts as published.
func (m *Manager) published(ca *x509.Certificate) bool {
	if m.opts.CRDName == "" {
		return true
	}
	v, err := m.readCRD()
	if err != nil {
		return false
	}
	if !v.found || !v.webhook {
		return true
	}
	certs, _ := parseCerts(v.caBundle)
	return containsCert(certs, ca)
}

// syncCABundle makes the CRD's caBundle equal to bundle (the Secret's ca.crt). It patches
// only that one field, only when it differs, with a JSON merge patch: whoever applies the
// CRD (kubectl apply, a Helm chart) owns everything else, and a re-apply that wipes the
// caBundle is repaired as soon as the watch shows it.
func (m *Manager) syncCABundle(ctx context.Context, bundle []byte) error {
	if m.opts.CRDName == "" {
		return nil
	}
	logger := klog.FromContext(ctx)
	v, err := m.readCRD()
	if err != nil {
		return err
	}
	switch {
	case !v.found:
		m.logCRDOnce(logger, "missing", "The CRD does not exist (yet); its caBundle will be set once it does")
		return nil
	case !v.webhook:
		m.logCRDOnce(logger, "not-webhook", "The CRD is not configured for webhook conversion; not setting its caBundle", "strategy", v.strategy)
		return nil
	}
	m.crdLogged = ""
	if bytes.Equal(v.caBundle, bundle) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{
		"spec": map[string]any{
			"conversion": map[string]any{
				"webhook": map[string]any{
					"clientConfig": map[string]any{
						"caBundle": base64.StdEncoding.EncodeToString(bundle),
					},
				},
			},
		},
	})
	if err != nil {
		return err
	}
	_, err = m.dyn.Resource(crdGVR).Patch(ctx, m.opts.CRDName, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager})
	if apierrors.IsNotFound(err) {
		// Deleted since the cache saw it; its re-creation will be seen by the watch.
		logger.V(2).Info("The CRD was deleted before its caBundle could be set")
		return nil
	}
	if err != nil {
		return fmt.Errorf("setting the CRD's caBundle: %w", err)
	}
	certs, _ := parseCerts(bundle)
	logger.Info("Set the CRD's caBundle", "cas", len(certs))
	return nil
}

// logCRDOnce logs a CRD condition that stops the caBundle from being set, once per
// occurrence rather than once per sync.
func (m *Manager) logCRDOnce(logger klog.Logger, condition, msg string, kv ...any) {
	if m.crdLogged == condition {
		return
	}
	m.crdLogged = condition
	logger.Info(msg, kv...)
}

// x509CertPool returns a pool of the certificates of a PEM bundle.
func x509CertPool(bundle []byte) *x509.CertPool {
	pool := x509.NewCertPool()
	certs, _ := parseCerts(bundle)
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}
