package webhookcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Options says which Secret and CRD to keep current, and what the certificates look like.
type Options struct {
	// Namespace and SecretName name the Secret that holds the CA and the serving
	// certificate, shared by all replicas.
	Namespace, SecretName string
	// CRDName is the CustomResourceDefinition whose
	// spec.conversion.webhook.clientConfig.caBundle is kept equal to the Secret's ca.crt,
	// e.g. "foos.samplecontroller.example.com". Empty: no CRD is touched (the bundle is
	// then only in the Secret).
	CRDName string
	// DNSNames and IPAddresses are the serving certificate's subject alternative names:
	// the Service's names (NAME.NAMESPACE.svc, NAME.NAMESPACE.svc.cluster.local) when the
	// API server calls the webhook through a Service, an address such as 127.0.0.1 when it
	// calls it by URL. At least one is needed.
	DNSNames    []string
	IPAddresses []net.IP
	// Hosts is the same as DNSNames and IPAddresses mixed, as a command-line flag gives
	// them: each entry that parses as an IP address is one, any other a DNS name.
	Hosts []string
	// CAValidity is the CA's lifetime; 0 means DefaultCAValidity. CertValidity is the
	// serving certificate's; 0 means DefaultCertValidity. Each certificate is renewed once
	// two thirds of its validity have passed. Both must be at least MinValidity (short ones
	// are for tests that want to see renewals happen), and CertValidity no longer than
	// CAValidity. (During a CA rotation the serving certificate is kept until the new CA
	// has been published for caPropagationDelay, 2 minutes: a CertValidity under ~6
	// minutes may expire first, and is then replaced only at its expiry.)
	CAValidity   time.Duration
	CertValidity time.Duration
}

// Defaults and bounds of Options' validities.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour // 87600h
	DefaultCertValidity = 90 * 24 * time.Hour       // 2160h
	// MinValidity keeps renewals from following each other faster than the API server
	// can take the writes.
	MinValidity = time.Minute
)

const (
	// syncKey is the only key of the work queue: the Secret, the in-memory certificate and
	// the CRD's caBundle are one piece of state, decided together.
	syncKey = "sync"
	// maxTimerWait bounds the timer so that a decision is re-made at least that often, even
	// if a wall-clock jump (suspend, NTP step) made a long timer wrong.
	maxTimerWait = time.Hour
	// maxAttempts bounds the re-reads after a Conflict or AlreadyExists within one sync;
	// past it the sync fails and the work queue retries with backoff.
	maxAttempts = 5
	// fieldManager names this code in the CRD's managedFields.
	fieldManager = "sample-controller-webhookcert"
	// managedByLabel marks the Secret as made and rewritten by the controller.
	managedByLabel = "app.kubernetes.io/managed-by"
	managedByValue = "sample-controller"
)

// Manager keeps the webhook's CA and serving certificate in a Secret, serves the current
// certificate from memory and keeps the CRD's caBundle in step. Create it with New, run it
// with Run; GetCertificate and Ready may be called at any time, from any goroutine.
type Manager struct {
	opts  Options
	spec  certSpec
	kube  kubernetes.Interface
	dyn   dynamic.Interface
	clock clock.Clock // the real clock; tests put a fake one before Run

	// The informers only tell when to sync; the Secret is read from the API server
	// (see syncSecret), the CRD from crdLister.
	secretInformer cache.SharedIndexInformer
	crdInformer    cache.SharedIndexInformer // nil without CRDName
	crdLister      cache.GenericLister       // nil without CRDName

	queue workqueue.TypedRateLimitingInterface[string]

	// cert is the serving certificate handed to TLS handshakes.
	cert    atomic.Pointer[tls.Certificate]
	started atomic.Bool

	// syncMu makes syncs one at a time (there is one worker, but tests call sync directly)
	// and guards crdLogged.
	syncMu    sync.Mutex
	crdLogged string // the CRD condition last logged, so that it is logged once

	// deadlineMu guards deadline, the next time the clock alone calls for a sync;
	// deadlineSet tells the timer that a sync has decided it anew.
	deadlineMu  sync.Mutex
	deadline    time.Time
	deadlineSet chan struct{}
}

// New checks opts and returns a Manager that is not running yet. dyn may be nil when
// opts.CRDName is empty.
func New(kube kubernetes.Interface, dyn dynamic.Interface, opts Options) (*Manager, error) {
	if kube == nil {
		return nil, errors.New("webhookcert: a Kubernetes client is required")
	}
	if opts.CAValidity == 0 {
		opts.CAValidity = DefaultCAValidity
	}
	if opts.CertValidity == 0 {
		opts.CertValidity = DefaultCertValidity
	}
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("webhookcert: %w", err)
	}
	dnsNames, ips := opts.sans()
	if opts.CRDName != "" && dyn == nil {
		return nil, fmt.Errorf("webhookcert: CRDName %q needs a dynamic client", opts.CRDName)
	}
	m := &Manager{
		opts: opts,
		spec: certSpec{
			dnsNames:     dnsNames,
			ipAddresses:  ips,
			caValidity:   opts.CAValidity,
			certValidity: opts.CertValidity,
			caName:       opts.SecretName + "-ca",
		},
		kube:  kube,
		dyn:   dyn,
		clock: clock.RealClock{},
		// The cap is short enough that a CRD re-applied while the API server was failing
		// is still repaired within minutes once it recovers.
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 2*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "webhookcert"}),
		deadlineSet: make(chan struct{}, 1),
	}

	// Both informers watch a single object through a field selector, so that the RBAC
	// rules can name it (resourceNames) for list and watch too, and nothing else is cached.
	// No resync: the timer bounds the time between two decisions instead.
	byName := func(name string) func(*metav1.ListOptions) {
		return func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}
	}
	m.secretInformer = coreinformers.NewFilteredSecretInformer(kube, opts.Namespace, 0, cache.Indexers{}, byName(opts.SecretName))
	if _, err := m.secretInformer.AddEventHandler(m.handler(opts.SecretName)); err != nil {
		return nil, fmt.Errorf("webhookcert: %w", err)
	}
	if opts.CRDName != "" {
		gi := dynamicinformer.NewFilteredDynamicInformer(dyn, crdGVR, "", 0, cache.Indexers{}, byName(opts.CRDName))
		m.crdInformer, m.crdLister = gi.Informer(), gi.Lister()
		if _, err := m.crdInformer.AddEventHandler(m.handler(opts.CRDName)); err != nil {
			return nil, fmt.Errorf("webhookcert: %w", err)
		}
	}
	return m, nil
}

func (o *Options) validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("Namespace %q: %v", o.Namespace, msgs))
	}
	if msgs := validation.IsDNS1123Subdomain(o.SecretName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("SecretName %q: %v", o.SecretName, msgs))
	}
	if o.CRDName != "" {
		if msgs := validation.IsDNS1123Subdomain(o.CRDName); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("CRDName %q: %v", o.CRDName, msgs))
		}
	}
	if len(o.DNSNames) == 0 && len(o.IPAddresses) == 0 && len(o.Hosts) == 0 {
		errs = append(errs, errors.New("the serving certificate needs at least one of DNSNames, IPAddresses and Hosts"))
	}
	for _, n := range o.DNSNames {
		if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("DNSNames: %q: %v", n, msgs))
		}
	}
	for _, h := range o.Hosts {
		if net.ParseIP(h) != nil {
			continue
		}
		if msgs := validation.IsDNS1123Subdomain(h); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("Hosts: %q is neither an IP address nor a DNS name: %v", h, msgs))
		}
	}
	for _, ip := range o.IPAddresses {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			errs = append(errs, fmt.Errorf("IPAddresses: %q is not an IP address", ip))
		}
	}
	if o.CAValidity < MinValidity {
		errs = append(errs, fmt.Errorf("CAValidity %v is shorter than %v", o.CAValidity, MinValidity))
	}
	if o.CertValidity < MinValidity {
		errs = append(errs, fmt.Errorf("CertValidity %v is shorter than %v", o.CertValidity, MinValidity))
	}
	if o.CertValidity > o.CAValidity {
		errs = append(errs, fmt.Errorf("CertValidity %v is longer than CAValidity %v", o.CertValidity, o.CAValidity))
	}
	return errors.Join(errs...)
}

// sans returns the serving certificate's DNS names and IP addresses: DNSNames and
// IPAddresses, then Hosts sorted into them, without duplicates.
func (o *Options) sans() ([]string, []net.IP) {
	var dnsNames []string
	var ips []net.IP
	addDNS := func(n string) {
		for _, d := range dnsNames {
			if strings.EqualFold(d, n) {
				return
			}
		}
		dnsNames = append(dnsNames, n)
	}
	addIP := func(ip net.IP) {
		for _, i := range ips {
			if i.Equal(ip) {
				return
			}
		}
		ips = append(ips, ip)
	}
	for _, n := range o.DNSNames {
		addDNS(n)
	}
	for _, ip := range o.IPAddresses {
		addIP(ip)
	}
	for _, h := range o.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			addIP(ip)
		} else {
			addDNS(h)
		}
	}
	return dnsNames, ips
}

// handler queues a sync on any change of the object named name. The field selector should
// deliver nothing else; checking the name too costs nothing and keeps a server (or a fake)
// that ignores the selector from waking us for other objects.
func (m *Manager) handler(name string) cache.ResourceEventHandler {
	enqueue := func(obj interface{}) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if o, ok := obj.(metav1.Object); ok && o.GetName() != name {
			return
		}
		m.queue.Add(syncKey)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
}

// Run keeps the Secret, the served certificate and the CRD's caBundle current until ctx is
// done, then returns nil. Failures are logged and retried with backoff, never returned: a
// replica that cannot reach the API server keeps serving the certificate it has. Run may
// be called once.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("webhookcert: Run called twice")
	}
	logger := klog.FromContext(ctx).WithValues("secret", klog.KRef(m.opts.Namespace, m.opts.SecretName))
	if m.opts.CRDName != "" {
		logger = logger.WithValues("crd", m.opts.CRDName)
	}
	ctx = klog.NewContext(ctx, logger)

	var wg sync.WaitGroup
	defer wg.Wait()
	defer m.queue.ShutDown() // runs before wg.Wait: it ends the worker and the timer

	synced := []cache.InformerSynced{m.secretInformer.HasSynced}
	wg.Go(func() { m.secretInformer.RunWithContext(ctx) })
	if m.crdInformer != nil {
		synced = append(synced, m.crdInformer.HasSynced)
		wg.Go(func() { m.crdInformer.RunWithContext(ctx) })
	}
	logger.Info("Starting the webhook certificate manager")
	// A decision needs the CRD as it is (is the new CA published? is the caBundle right?).
	if !cache.WaitForNamedCacheSyncWithContext(ctx, synced...) {
		return nil
	}
	m.queue.Add(syncKey)
	wg.Go(func() { m.runTimer(ctx) })
	wg.Go(func() {
		for m.processNextItem(ctx) {
		}
	})
	<-ctx.Done()
	logger.Info("Stopping the webhook certificate manager")
	return nil
}

func (m *Manager) processNextItem(ctx context.Context) bool {
	key, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(key)
	if err := m.sync(ctx); err != nil {
		if ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Keeping the webhook certificate current failed; will retry", "retries", m.queue.NumRequeues(key))
		}
		m.queue.AddRateLimited(key)
		return true
	}
	m.queue.Forget(key)
	return true
}

// runTimer queues a sync at the deadline the last sync decided (a renewal, a CA switch,
// an old CA's expiry), or after maxTimerWait.
func (m *Manager) runTimer(ctx context.Context) {
	for {
		m.deadlineMu.Lock()
		deadline := m.deadline
		m.deadlineMu.Unlock()
		wait := maxTimerWait
		if !deadline.IsZero() {
			wait = min(deadline.Sub(m.clock.Now()), maxTimerWait)
		}
		fired := false
		if wait <= 0 {
			// Past already (the clock moved since the sync that decided it): a timer
			// would not fire on a fake clock until it moves again, so queue at once.
			m.queue.Add(syncKey)
			fired = true
		} else {
			t := m.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-m.deadlineSet:
				t.Stop()
			case <-t.C():
				m.queue.Add(syncKey)
				fired = true
			}
		}
		if fired {
			// Re-arm only once that sync has decided the next deadline, so the timer
			// never spins on one that the sync did not act upon.
			select {
			case <-ctx.Done():
				return
			case <-m.deadlineSet:
			}
		}
	}
}

func (m *Manager) setDeadline(t time.Time) {
	m.deadlineMu.Lock()
	m.deadline = t
	m.deadlineMu.Unlock()
	select {
	case m.deadlineSet <- struct{}{}:
	default:
	}
}

// sync makes the Secret hold a good CA bundle and serving certificate (creating or
// repairing it), serves that certificate and puts the bundle into the CRD.
func (m *Manager) sync(ctx context.Context) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	secret, p, err := m.syncSecret(ctx)
	if err != nil {
		return err
	}
	if err := m.load(ctx, secret); err != nil {
		return err
	}
	m.setDeadline(p.deadline)
	return m.syncCABundle(ctx, secret.Data[caCertKey])
}

// syncSecret reads the Secret, decides, and writes what changed. The write carries the
// resourceVersion that was read, so when replicas race only one write wins: the others get
// a Conflict (or AlreadyExists for a create), read the winner's Secret and decide again —
// normally to keep it. It returns the Secret as it now is and the decision about it.
func (m *Manager) syncSecret(ctx context.Context) (*corev1.Secret, plan, error) {
	logger := klog.FromContext(ctx)
	client := m.kube.CoreV1().Secrets(m.opts.Namespace)

	for attempt := 0; attempt < maxAttempts; attempt++ {
		// Read from the API server, not the informer's cache: the cache may not show our
		// own last write yet, and deciding on it would mean a needless Conflict at best,
		// serving an older certificate again at worst. A sync is rare (a change, a
		// deadline), so the read costs nothing that matters.
		secret, err := client.Get(ctx, m.opts.SecretName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			secret = nil
		} else if err != nil {
			return nil, plan{}, fmt.Errorf("reading Secret: %w", err)
		}
		var in map[string][]byte
		if secret != nil {
			in = secret.Data
		}
		p, err := decide(in, m.clock.Now(), m.spec, m.published)
		if err != nil {
			return nil, plan{}, err
		}
		if secret != nil && !p.changed {
			return secret, p, nil
		}

		if secret == nil {
			created, err := client.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{
					Name:      m.opts.SecretName,
					Namespace: m.opts.Namespace,
					Labels:    map[string]string{managedByLabel: managedByValue},
				},
				Type: corev1.SecretTypeTLS,
				Data: p.data,
			}, metav1.CreateOptions{FieldManager: fieldManager})
			if apierrors.IsAlreadyExists(err) {
				logger.V(2).Info("Another replica created the Secret first; using theirs")
				continue
			}
			if err != nil {
				return nil, plan{}, fmt.Errorf("creating Secret: %w", err)
			}
			logger.Info("Created the Secret with a new CA and serving certificate", "reasons", p.reasons)
			return created, p, nil
		}

		updated := secret.DeepCopy()
		if updated.Data == nil {
			updated.Data = map[string][]byte{}
		}
		for k, v := range p.data {
			updated.Data[k] = v
		}
		if updated.Labels == nil {
			updated.Labels = map[string]string{}
		}
		updated.Labels[managedByLabel] = managedByValue
		updated, err = client.Update(ctx, updated, metav1.UpdateOptions{FieldManager: fieldManager})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// Another replica wrote first (or the Secret was deleted meanwhile): re-read.
			logger.V(2).Info("The Secret changed since it was read; reading it again", "err", err)
			continue
		}
		if err != nil {
			return nil, plan{}, fmt.Errorf("updating Secret: %w", err)
		}
		logger.Info("Updated the Secret", "reasons", p.reasons)
		return updated, p, nil
	}
	return nil, plan{}, fmt.Errorf("the Secret kept changing under us (%d attempts)", maxAttempts)
}

// load makes the Secret's serving certificate the one GetCertificate returns, if it is not
// already.
func (m *Manager) load(ctx context.Context, secret *corev1.Secret) error {
	certPEM, keyPEM := secret.Data[tlsCertKey], secret.Data[tlsKeyKey]
	if cur := m.cert.Load(); cur != nil && bytes.Equal(cur.Certificate[0], firstDER(certPEM)) {
		return nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err == nil && pair.Leaf == nil { // with GODEBUG x509keypairleaf=0
		pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0])
	}
	if err != nil {
		// decide() has just checked the pair: this would be a bug.
		return fmt.Errorf("loading the serving certificate: %w", err)
	}
	leaf := pair.Leaf
	m.cert.Store(&pair)
	klog.FromContext(ctx).Info("Serving a new certificate", "cert", describe(leaf), "issuer", leaf.Issuer.CommonName,
		"notAfter", leaf.NotAfter.Format(time.RFC3339), "renewAt", renewAt(leaf).Format(time.RFC3339))
	return nil
}

// firstDER returns the DER bytes of the first PEM block, or nil.
func firstDER(b []byte) []byte {
	certs, _ := parseCerts(b)
	if len(certs) == 0 {
		return nil
	}
	return certs[0].Raw
}

// GetCertificate returns the current serving certificate, for tls.Config.GetCertificate.
// A renewed certificate is returned from the next handshake on: no restart, no reload. It
// fails until the first certificate has been loaded.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("webhookcert: no serving certificate yet")
}

// Ready returns nil once a serving certificate is loaded and, when a CRD is managed, that
// CRD's caBundle verifies it: only then can the API server call this replica's webhook.
// It is meant for a readiness probe, so that a replica is not sent conversions before.
// A CRD that is not configured for webhook conversion does not hold readiness back
// (nothing calls the webhook then).
func (m *Manager) Ready() error {
	c := m.cert.Load()
	if c == nil {
		return errors.New("no serving certificate loaded yet")
	}
	if m.opts.CRDName == "" {
		return nil
	}
	if !m.crdInformer.HasSynced() {
		return fmt.Errorf("CRD %s not read yet", m.opts.CRDName)
	}
	v, err := m.readCRD()
	if err != nil {
		return err
	}
	switch {
	case !v.found:
		return fmt.Errorf("CRD %s not found", m.opts.CRDName)
	case !v.webhook:
		return nil
	}
	roots := x509CertPool(v.caBundle)
	if err := verify(c.Leaf, roots, m.clock.Now()); err != nil {
		return fmt.Errorf("CRD %s's caBundle does not verify the serving certificate %s (yet): %w", m.opts.CRDName, describe(c.Leaf), err)
	}
	return nil
}
