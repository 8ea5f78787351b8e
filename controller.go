// This file is the teaching core of sample-controller. Read it top to bottom: it follows one
// Foo from the moment the API server tells us about it to the moment its status is written.
//
//  1. Is the Foo API served?  GroupVersionKind -> GroupVersionResource through a RESTMapper.
//  2. NewController           shared informers (list+watch) feed event handlers; listers read the cache.
//  3. Event handlers          turn "something changed" into a key in a rate-limited workqueue.
//  4. Run and the workers     wait for the caches, then take keys off the queue one at a time.
//  5. handleErr               forget on success, retry with backoff, drop after maxRetries.
//  6. syncFoo                 compare desired state (spec) with observed state and act.
//  7. newDeployment           the Deployment a Foo asks for, owned by the Foo.
//  8. updateFooStatus         report what we observed, writing only when it changed.
//
// docs/ has a longer walkthrough; the README has a diagram of the loop.
package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	samplev1alpha1 "example.com/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
	samplescheme "example.com/sample-controller/pkg/generated/clientset/versioned/scheme"
	informers "example.com/sample-controller/pkg/generated/informers/externalversions/samplecontroller/v1alpha1"
	listers "example.com/sample-controller/pkg/generated/listers/samplecontroller/v1alpha1"
	"example.com/sample-controller/pkg/metrics"
)

const (
	// controllerAgentName names this controller in Events (source.component), as the field
	// manager of its writes (metadata.managedFields) and as the name of its workqueue.
	controllerAgentName = "sample-controller"

	// maxRetries is how many times a key is retried after an error before it is dropped.
	// The per-item backoff starts at 5ms and doubles, so the retries come after
	// 5ms, 10ms, 20ms, 40ms, 80ms, 160ms, 320ms, 640ms, 1.3s, 2.6s, 5.1s, 10.2s, 20.5s, 41s
	// and 82s: about 2m45s in all. A key dropped here is not lost: the next resync of the Foo
	// informer, or any change to the Foo or its Deployment, puts it back in the queue.
	maxRetries = 15

	// syncTimeout bounds one syncFoo. Workers finish the key in hand on shutdown (see
	// processNextWorkItem), so a sync must not be able to block forever on a dead API server.
	syncTimeout = 30 * time.Second

	// deploymentNameIndex indexes Foos by "namespace/spec.deploymentName", so that a Deployment
	// nobody owns can be mapped to the Foo that wants its name (see handleDeployment).
	deploymentNameIndex = "spec.deploymentName"

	// fooImage is the image of the pods a Foo runs: nginx built to run as a non-root user.
	fooImage = "nginxinc/nginx-unprivileged:1.27"

	// fooLabel is put on the Deployment, its selector and its pods. Its value is the Foo's
	// name, which is why the CRD limits Foo names to 63 characters (a label value's limit).
	fooLabel = "samplecontroller.example.com/foo"
)

// Reasons of the Events this controller records. A reason is a stable CamelCase word that
// `kubectl get events --field-selector reason=...` can select; the message is for people.
const (
	EventDeploymentCreated  = "DeploymentCreated"
	EventDeploymentUpdated  = "DeploymentUpdated"
	EventDeploymentNotOwned = "DeploymentNotOwned"
	EventDeploymentRejected = "DeploymentRejected"
	EventInvalidSpec        = "InvalidSpec"
)

// ReasonInvalidSpec is the Ready condition's reason when a Foo got past admission with a spec the
// controller cannot act on (possible only with an older or hand-edited CRD without the schema).
const ReasonInvalidSpec = "InvalidSpec"

// fooGroupVersionKind is what a Foo *is* (its Kind, in an API group and version). The API
// server serves it as a *resource* (foos); step 1 below shows how to get from one to the other.
var fooGroupVersionKind = samplev1alpha1.SchemeGroupVersion.WithKind("Foo")

// ---------------------------------------------------------------------------------------------
// 1. Is the Foo API served?
// ---------------------------------------------------------------------------------------------

// fooCRDFile is the file a user applies to install the Foo API.
const fooCRDFile = "artifacts/crd/samplecontroller.example.com_foos.yaml"

// errFooAPINotServed means the API server does not know the Foo kind: its CRD is not installed.
var errFooAPINotServed = errors.New("the Foo API (samplecontroller.example.com/v1alpha1) is not served by this cluster: install its CRD with `kubectl apply -f " + fooCRDFile + "`")

// resolveFooResource asks the API server, through its discovery documents, which resource
// serves the Foo kind. A RESTMapper is the object that answers "GroupVersionKind ->
// GroupVersionResource": kinds are what objects are (Foo), resources are what URLs name
// (/apis/samplecontroller.example.com/v1alpha1/namespaces/NS/foos). A discovery-backed mapper
// reads /apis to build that table; a kind that no installed CRD or built-in API provides gives a
// "no matches for kind" error, which we turn into errFooAPINotServed.
func resolveFooResource(mapper meta.RESTMapper) (schema.GroupVersionResource, error) {
	mapping, err := mapper.RESTMapping(fooGroupVersionKind.GroupKind(), fooGroupVersionKind.Version)
	if meta.IsNoMatchError(err) {
		return schema.GroupVersionResource{}, errFooAPINotServed
	}
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("resolving %s to a resource: %w", fooGroupVersionKind, err)
	}
	return mapping.Resource, nil
}

// WaitForFooAPI waits until the cluster serves the Foo API, logging one clear line each time it
// finds it missing. Without this check, the informer would retry "the server could not find the
// requested resource" forever with no hint of what is wrong. Waiting (rather than exiting)
// lets the controller and its CRD be applied together in any order.
func WaitForFooAPI(ctx context.Context, mapper meta.ResettableRESTMapper, interval time.Duration) (schema.GroupVersionResource, error) {
	logger := klog.FromContext(ctx)
	var gvr schema.GroupVersionResource
	err := wait.PollUntilContextCancel(ctx, interval, true, func(ctx context.Context) (bool, error) {
		var err error
		gvr, err = resolveFooResource(mapper)
		switch {
		case errors.Is(err, errFooAPINotServed):
			logger.Error(nil, errFooAPINotServed.Error()+"; waiting for it", "retryInterval", interval)
			mapper.Reset() // forget the cached discovery documents, so the next try sees a new CRD
			return false, nil
		case err != nil:
			logger.Error(err, "Cannot read the API server's discovery documents; retrying", "retryInterval", interval)
			mapper.Reset()
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return gvr, fmt.Errorf("waiting for the Foo API: %w", err)
	}
	logger.Info("Foo API is served", "groupVersionKind", fooGroupVersionKind, "groupVersionResource", gvr)
	return gvr, nil
}

// ---------------------------------------------------------------------------------------------
// 2. The controller and its wiring
// ---------------------------------------------------------------------------------------------

// Controller keeps, for every Foo, a Deployment in the state the Foo's spec asks for, and
// reports the Deployment's state in the Foo's status.
type Controller struct {
	kubeclientset   kubernetes.Interface // typed client for built-in APIs (apps/v1 Deployments, Events)
	sampleclientset clientset.Interface  // generated typed client for our API (Foos)

	// Listers read the informers' caches: in-memory, always a little behind the API server,
	// and shared by everything in this process. Reading them costs no API request.
	deploymentsLister appslisters.DeploymentLister
	deploymentsSynced cache.InformerSynced
	foosLister        listers.FooLister
	foosIndexer       cache.Indexer
	foosSynced        cache.InformerSynced

	// workqueue holds the keys (namespace/name) of Foos that need a sync. It holds keys, not
	// objects, so that the worker always reads the newest state from the cache; it never hands
	// the same key to two workers at once; and a key added many times before a worker gets to it
	// is synced once.
	workqueue workqueue.TypedRateLimitingInterface[cache.ObjectName]

	// syncHandler is syncFoo; a field so that tests can drive the worker loop with their own.
	syncHandler func(ctx context.Context, key cache.ObjectName) error

	// Events are recorded asynchronously and sent through eventsClient. main gives it a client
	// of its own, so that events never wait in the client-side rate limiter behind (or delay)
	// the writes that reconcile Foos.
	eventsClient     typedcorev1.EventsGetter
	eventBroadcaster record.EventBroadcaster
	recorder         record.EventRecorder
}

// NewController wires the informers to the event handlers and creates the workqueue. Nothing
// runs until the informers are started and Run is called.
func NewController(
	ctx context.Context,
	kubeclientset kubernetes.Interface,
	sampleclientset clientset.Interface,
	deploymentInformer appsinformers.DeploymentInformer,
	fooInformer informers.FooInformer) (*Controller, error) {
	logger := klog.FromContext(ctx)

	// Register Foo in client-go's scheme so the event recorder can turn a *Foo into an
	// ObjectReference (it needs the Foo's GroupVersionKind for involvedObject).
	utilruntime.Must(samplescheme.AddToScheme(scheme.Scheme))

	eventBroadcaster := record.NewBroadcaster(record.WithContext(ctx))
	recorder := eventBroadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: controllerAgentName})

	// Per-item exponential backoff (5ms doubling, see maxRetries) for a key that keeps failing,
	// and an overall token bucket (50 retries/s, bursts of 300) so that many failing keys at
	// once cannot flood the API server. The queue retries at the slower of the two.
	rateLimiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](5*time.Millisecond, 1000*time.Second),
		&workqueue.TypedBucketRateLimiter[cache.ObjectName]{Limiter: rate.NewLimiter(rate.Limit(50), 300)},
	)

	c := &Controller{
		kubeclientset:     kubeclientset,
		sampleclientset:   sampleclientset,
		deploymentsLister: deploymentInformer.Lister(),
		deploymentsSynced: deploymentInformer.Informer().HasSynced,
		foosLister:        fooInformer.Lister(),
		foosIndexer:       fooInformer.Informer().GetIndexer(),
		foosSynced:        fooInformer.Informer().HasSynced,
		// A named queue: the name labels the workqueue metrics (depth, latency, retries, ...)
		// once a metrics provider is registered.
		workqueue: workqueue.NewTypedRateLimitingQueueWithConfig(rateLimiter,
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "foos"}),
		eventsClient:     kubeclientset.CoreV1(),
		eventBroadcaster: eventBroadcaster,
		recorder:         recorder,
	}
	c.syncHandler = c.syncFoo

	// An index is a second key the cache can look objects up by, kept up to date as the watch
	// delivers changes. Indexers must be added before the informer starts.
	if err := fooInformer.Informer().AddIndexers(cache.Indexers{deploymentNameIndex: fooDeploymentNameIndexFunc}); err != nil {
		return nil, fmt.Errorf("adding the %s index to the Foo informer: %w", deploymentNameIndex, err)
	}

	logger.Info("Setting up event handlers")
	// Informer: a Reflector LISTs Foos once, then WATCHes from the list's resourceVersion; every
	// change lands in the cache and then calls these handlers. Handlers must be quick and must
	// not block: they only enqueue a key.
	if _, err := fooInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) { c.enqueueFoo(ctx, obj, "added") },
		UpdateFunc: func(oldObj, newObj interface{}) {
			// The informer also calls UpdateFunc on every resync (the same object, unchanged
			// resourceVersion). Resync is the safety net that retries a dropped key and
			// re-checks every Foo; it is cheap here because a converged Foo costs no writes.
			if oldObj.(*samplev1alpha1.Foo).ResourceVersion == newObj.(*samplev1alpha1.Foo).ResourceVersion {
				c.enqueueFoo(ctx, newObj, "resync")
				return
			}
			c.enqueueFoo(ctx, newObj, "updated")
		},
		// A deleted Foo needs no cleanup from us: its Deployment carries an ownerReference to
		// the Foo (controller: true), so kube-controller-manager's garbage collector deletes the
		// Deployment (and, through their own ownerReferences, its ReplicaSets and Pods) once the
		// Foo is gone. We still enqueue the key: syncFoo then finds no Foo and returns, which
		// clears any retry state the queue kept for it.
		DeleteFunc: func(obj interface{}) { c.enqueueFoo(ctx, obj, "deleted") },
	}); err != nil {
		return nil, fmt.Errorf("adding Foo event handlers: %w", err)
	}

	// We also watch Deployments: when one that a Foo owns changes (its status moves, or someone
	// edits or deletes it), the owning Foo needs a sync. This is what makes the controller
	// level-triggered on its children as well as on its own objects.
	if _, err := deploymentInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) { c.handleDeployment(ctx, obj) },
		UpdateFunc: func(oldObj, newObj interface{}) {
			oldDepl, newDepl := oldObj.(*appsv1.Deployment), newObj.(*appsv1.Deployment)
			if oldDepl.ResourceVersion == newDepl.ResourceVersion {
				return // a resync of a Deployment: the Foo informer's resync already covers its owner
			}
			c.handleDeployment(ctx, newObj)
			// If the controllerRef changed (someone edited ownerReferences), the old owner must
			// learn that it lost its Deployment too.
			if !equality.Semantic.DeepEqual(metav1.GetControllerOf(oldDepl), metav1.GetControllerOf(newDepl)) {
				c.handleDeployment(ctx, oldObj)
			}
		},
		DeleteFunc: func(obj interface{}) { c.handleDeployment(ctx, obj) },
	}); err != nil {
		return nil, fmt.Errorf("adding Deployment event handlers: %w", err)
	}

	return c, nil
}

// fooDeploymentNameIndexFunc indexes a Foo under "namespace/spec.deploymentName".
func fooDeploymentNameIndexFunc(obj interface{}) ([]string, error) {
	foo, ok := obj.(*samplev1alpha1.Foo)
	if !ok {
		return nil, nil
	}
	return []string{cache.NewObjectName(foo.Namespace, foo.Spec.DeploymentName).String()}, nil
}

// ---------------------------------------------------------------------------------------------
// 3. Event handlers: from "something changed" to a key in the queue
// ---------------------------------------------------------------------------------------------

// enqueueFoo puts a Foo's key in the queue. obj may be a tombstone
// (cache.DeletedFinalStateUnknown) when the watch missed a delete and the informer learned of
// it on a relist; DeletionHandlingObjectToName unwraps it.
func (c *Controller) enqueueFoo(ctx context.Context, obj interface{}, why string) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Cannot get the key of a Foo", "object", obj)
		return
	}
	// Resync events are routine and numerous; log them one level lower.
	level := 2
	if why == "resync" {
		level = 4
	}
	klog.FromContext(ctx).V(level).Info("Foo event; enqueueing", "foo", key, "event", why)
	c.workqueue.Add(key)
}

// handleDeployment finds the Foo that a changed Deployment matters to, and enqueues it:
//   - a Deployment controlled by a Foo (its controller ownerReference names our group, the Foo
//     kind, and the UID of a Foo in our cache) goes to that Foo;
//   - any other Deployment goes to the Foos that want its name (spec.deploymentName): they
//     could not create their Deployment while this one held the name, and may now.
func (c *Controller) handleDeployment(ctx context.Context, obj interface{}) {
	logger := klog.FromContext(ctx)
	deployment, ok := obj.(*appsv1.Deployment)
	if !ok {
		// A tombstone: the watch missed this Deployment's delete, and a relist found it gone.
		// The tombstone holds the last state we saw.
		tombstone, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			utilruntime.HandleErrorWithContext(ctx, nil, "Unexpected object in the Deployment informer", "object", obj)
			return
		}
		deployment, ok = tombstone.Obj.(*appsv1.Deployment)
		if !ok {
			utilruntime.HandleErrorWithContext(ctx, nil, "Tombstone holds an unexpected object", "object", tombstone.Obj)
			return
		}
	}

	if ref := metav1.GetControllerOf(deployment); ref != nil {
		if foo := c.resolveControllerRef(deployment.Namespace, ref); foo != nil {
			logger.V(2).Info("Owned Deployment changed; enqueueing its Foo", "deployment", klog.KObj(deployment), "foo", klog.KObj(foo))
			c.workqueue.Add(cache.MetaObjectToName(foo))
			return
		}
	}

	foos, err := c.foosIndexer.ByIndex(deploymentNameIndex, cache.MetaObjectToName(deployment).String())
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Cannot look up Foos by deployment name", "deployment", klog.KObj(deployment))
		return
	}
	for _, obj := range foos {
		foo := obj.(*samplev1alpha1.Foo)
		logger.V(2).Info("Deployment not controlled by this Foo changed; enqueueing the Foo that wants its name",
			"deployment", klog.KObj(deployment), "foo", klog.KObj(foo))
		c.workqueue.Add(cache.MetaObjectToName(foo))
	}
}

// resolveControllerRef returns the Foo that a controller ownerReference points to, or nil if
// it points to something else. Group and Kind tell us it is a Foo at all; the name finds the
// Foo in the cache; the UID tells us it is *this* Foo and not an earlier one of the same name
// that was deleted (whose Deployment the garbage collector is about to remove).
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *samplev1alpha1.Foo {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || gv.Group != fooGroupVersionKind.Group || ref.Kind != fooGroupVersionKind.Kind {
		return nil
	}
	foo, err := c.foosLister.Foos(namespace).Get(ref.Name)
	if err != nil {
		return nil
	}
	if foo.UID != ref.UID {
		return nil
	}
	return foo
}

// HasSynced reports whether both informers' caches hold a full LIST. It is the readiness probe:
// a standby replica (not the leader) also keeps its caches warm, and is ready to take over.
func (c *Controller) HasSynced() bool {
	return c.deploymentsSynced() && c.foosSynced()
}

// ---------------------------------------------------------------------------------------------
// 4. Run and the workers
// ---------------------------------------------------------------------------------------------

// Run starts the event sink, waits for the informers' caches, and runs workers until ctx is
// cancelled. Then it stops taking new keys, lets every worker finish the key it holds, and
// returns once they all have. The informers must have been started (factory.Start) before.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	logger := klog.FromContext(ctx)

	// Events go to the API server (core/v1 Events) and to the log, asynchronously: a sync never
	// waits for one. Shutdown stops the broadcaster; an Event still queued then may be lost
	// (Events are best effort: the status is the record that counts).
	c.eventBroadcaster.StartStructuredLogging(3)
	c.eventBroadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.eventsClient.Events("")})
	defer c.eventBroadcaster.Shutdown()

	logger.Info("Starting Foo controller", "workers", workers)

	// A sync that read an empty cache would conclude "no Deployment exists" and try to create
	// one that is already there. So no worker starts before both caches hold a full LIST.
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.deploymentsSynced, c.foosSynced) {
		if ctx.Err() != nil {
			return nil // asked to stop before the caches were ready
		}
		return errors.New("failed to wait for caches to sync")
	}

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { c.runWorker(ctx) })
	}
	logger.Info("Started workers")

	<-ctx.Done()
	logger.Info("Shutting down: finishing in-flight keys")
	// ShutDownWithDrain stops the queue from accepting keys and waits until every key a worker
	// holds is marked Done. wg.Wait then waits for the worker goroutines themselves.
	c.workqueue.ShutDownWithDrain()
	wg.Wait()
	logger.Info("Workers finished")
	return nil
}

// runWorker processes keys until the queue shuts down. Each worker handles one key at a time,
// and the queue never gives a key to two workers at once, so syncs of one Foo never race.
func (c *Controller) runWorker(ctx context.Context) {
	for c.processNextWorkItem(ctx) {
	}
}

// processNextWorkItem takes one key, syncs it, and tells the queue how it went.
func (c *Controller) processNextWorkItem(ctx context.Context) bool {
	key, shutdown := c.workqueue.Get()
	if shutdown {
		return false
	}
	// Done tells the queue this worker no longer holds the key: if it was added again while we
	// worked, it becomes available to a worker now.
	defer c.workqueue.Done(key)

	// Once shutdown begins, keys still waiting in the queue are left alone: the next process to
	// run this controller lists every Foo anyway. Only the key a worker already holds is finished.
	if ctx.Err() != nil {
		return false
	}

	// The sync gets its own deadline instead of ctx: a sync that has started should finish its
	// writes even while the process shuts down, rather than stop between two of them.
	syncCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), syncTimeout)
	defer cancel()
	start := time.Now()
	err := c.syncHandler(syncCtx, key)
	metrics.ReconcileDuration.Observe(time.Since(start).Seconds())
	c.handleErr(ctx, err, key)
	return true
}

// ---------------------------------------------------------------------------------------------
// 5. handleErr: forget, retry, or drop
// ---------------------------------------------------------------------------------------------

func (c *Controller) handleErr(ctx context.Context, err error, key cache.ObjectName) {
	logger := klog.FromContext(ctx)
	switch {
	case err == nil:
		// Success resets the key's backoff, so its next failure starts again at 5ms.
		metrics.ReconcileTotal.WithLabelValues(metrics.ResultSuccess).Inc()
		c.workqueue.Forget(key)

	case apierrors.IsConflict(err):
		// 409 Conflict: we wrote with a resourceVersion that is no longer current (optimistic
		// concurrency). Nothing is wrong; our cache was behind. Retry once the cache catches up.
		logger.V(4).Info("Conflict writing; requeueing", "foo", key, "err", err)
		metrics.ReconcileTotal.WithLabelValues(metrics.ResultConflict).Inc()
		c.workqueue.AddRateLimited(key)

	case c.workqueue.NumRequeues(key) < maxRetries:
		logger.Error(err, "Error syncing Foo; requeueing", "foo", key, "retries", c.workqueue.NumRequeues(key))
		// AddRateLimited, not Add: the key comes back after its backoff, not at once.
		metrics.ReconcileTotal.WithLabelValues(metrics.ResultError).Inc()
		c.workqueue.AddRateLimited(key)

	default:
		utilruntime.HandleErrorWithContext(ctx, err, "Dropping Foo from the queue after too many retries; a later change or resync retries it",
			"foo", key, "maxRetries", maxRetries)
		metrics.ReconcileTotal.WithLabelValues(metrics.ResultDropped).Inc()
		c.workqueue.Forget(key)
	}
}

// ---------------------------------------------------------------------------------------------
// 6. syncFoo: desired state against observed state
// ---------------------------------------------------------------------------------------------

// syncFoo makes the world match one Foo's spec and records what it saw in the Foo's status.
// It is level-triggered: it does not ask what event brought the key here, it looks at the
// whole current state, so a missed or duplicated event does no harm.
func (c *Controller) syncFoo(ctx context.Context, key cache.ObjectName) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "foo", key)
	ctx = klog.NewContext(ctx, logger)
	// -v=2 logs what a sync decides and writes; -v=4 adds every sync, including the resyncs
	// of converged Foos, which find nothing to do (a thousand Foos make a thousand every period).
	start := time.Now()
	logger.V(4).Info("Started syncing Foo")
	defer func() { logger.V(4).Info("Finished syncing Foo", "duration", time.Since(start)) }()

	// Read from the lister (the cache), never with a GET: it costs nothing, and the informer
	// keeps it current. Objects from the cache are shared: never modify them (DeepCopy first).
	foo, err := c.foosLister.Foos(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		logger.V(2).Info("Foo no longer exists; the garbage collector removes its Deployment")
		return nil
	}
	if err != nil {
		return err
	}

	// A Foo being deleted with propagationPolicy=Foreground stays (with a finalizer) until the
	// garbage collector has deleted its Deployment. Recreating the Deployment now would fight the
	// collector, so a Foo with a deletionTimestamp gets no writes at all.
	if foo.DeletionTimestamp != nil {
		logger.V(2).Info("Foo is being deleted; leaving its Deployment to the garbage collector")
		return nil
	}

	// The CRD's schema rejects a bad deploymentName at admission. This check is for a cluster
	// running an older CRD without that schema: report it, and do not retry, since retrying
	// cannot fix a spec. The next edit of the Foo brings it back.
	if msgs := validation.IsDNS1123Subdomain(foo.Spec.DeploymentName); len(msgs) > 0 {
		msg := fmt.Sprintf("spec.deploymentName %q is not a valid Deployment name: %v", foo.Spec.DeploymentName, msgs)
		cond := newReadyCondition(foo, metav1.ConditionFalse, ReasonInvalidSpec, msg)
		return c.updateFooStatus(ctx, foo, nil, cond, EventInvalidSpec)
	}

	deployment, err := c.deploymentsLister.Deployments(foo.Namespace).Get(foo.Spec.DeploymentName)
	if apierrors.IsNotFound(err) && foo.Status.ObservedGeneration > 0 {
		// We reported on this Foo before, so its Deployment may have existed and been deleted:
		// perhaps by the garbage collector, right after the Foo itself. The two watches keep no
		// order between them, so the cache can still hold a Foo the API server has deleted.
		// Re-creating would start pods the collector then deletes; ask the API server first.
		// (A new Foo has no status yet: its first create costs no extra request.)
		if exists, err := c.fooStillExists(ctx, foo); err != nil || !exists {
			return err
		}
	}
	if apierrors.IsNotFound(err) {
		// POST /apis/apps/v1/namespaces/NS/deployments
		logger.V(2).Info("Deployment does not exist; creating it", "deployment", klog.KRef(foo.Namespace, foo.Spec.DeploymentName))
		deployment, err = c.kubeclientset.AppsV1().Deployments(foo.Namespace).Create(ctx, newDeployment(foo),
			metav1.CreateOptions{FieldManager: controllerAgentName})
		if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			// The namespace is being deleted, and the Foo with it: nothing to build, report or retry.
			logger.V(2).Info("Namespace is terminating; not creating the Deployment")
			return nil
		}
		if isRejection(err) {
			return c.reportRejection(ctx, foo, nil, "creating", err)
		}
		if err != nil {
			// AlreadyExists means our cache is behind; the retry reads the newer cache.
			return fmt.Errorf("creating Deployment %s/%s: %w", foo.Namespace, foo.Spec.DeploymentName, err)
		}
		c.recorder.Eventf(foo, corev1.EventTypeNormal, EventDeploymentCreated, "Created Deployment %s", deployment.Name)
	} else if err != nil {
		return err
	}

	// metav1.IsControlledBy compares the controller ownerReference's UID with the Foo's. A UID
	// is unique across the cluster and across time, so a match also proves group and kind.
	if !metav1.IsControlledBy(deployment, foo) {
		// Someone else's Deployment has this name. We never touch it. We report it once (the
		// event fires when Ready turns to DeploymentNotOwned) and do not retry (only a failed
		// status write is returned): retrying could not succeed. When that Deployment is
		// deleted, handleDeployment enqueues this Foo again through the deploymentName index.
		msg := fmt.Sprintf("Deployment %s already exists and is not controlled by this Foo; delete it, or recreate the Foo with another spec.deploymentName", deployment.Name)
		logger.V(2).Info("Deployment is not controlled by this Foo; leaving it alone", "deployment", klog.KObj(deployment),
			"controller", metav1.GetControllerOf(deployment))
		cond := newReadyCondition(foo, metav1.ConditionFalse, samplev1alpha1.ReasonDeploymentNotOwned, msg)
		return c.updateFooStatus(ctx, foo, nil, cond, EventDeploymentNotOwned)
	}

	// A Deployment's selector cannot be changed after creation (the API server answers 422), so
	// it is not part of drift repair: a Deployment that selects other pods (recreated by someone
	// with our ownerReference, or made by an older version of this controller) is reported, and
	// left for a person to delete. Once it is gone, the next sync creates the right one.
	desired := newDeployment(foo)
	if !equality.Semantic.DeepEqual(deployment.Spec.Selector, desired.Spec.Selector) {
		msg := fmt.Sprintf("Deployment %s selects pods by %q, but this Foo's pods are labelled %q, and a Deployment's selector cannot be changed: delete the Deployment, and the controller creates it again with the right selector",
			deployment.Name, metav1.FormatLabelSelector(deployment.Spec.Selector), metav1.FormatLabelSelector(desired.Spec.Selector))
		logger.V(2).Info("Deployment's selector differs from the Foo's; reporting it", "deployment", klog.KObj(deployment))
		cond := newReadyCondition(foo, metav1.ConditionFalse, samplev1alpha1.ReasonDeploymentSelectorMismatch, msg)
		return c.updateFooStatus(ctx, foo, deployment, cond, samplev1alpha1.ReasonDeploymentSelectorMismatch)
	}

	// Drift: someone (a user, another tool) changed a field this controller manages. Put it
	// back. We write with Update (PUT) on a DeepCopy of the cached object rather than with
	// server-side apply: the copy carries the resourceVersion we read, so if the Deployment
	// changed since, the API server answers 409 Conflict instead of overwriting a change we have
	// not seen; and driftedFields decides locally whether a write is needed at all, which is
	// what makes a converged Foo cost zero writes.
	if drifted := driftedFields(desired, deployment); len(drifted) > 0 {
		updated := deployment.DeepCopy()
		setManagedFields(updated, desired)
		logger.V(2).Info("Deployment differs from the Foo's spec; updating it", "deployment", klog.KObj(deployment), "drifted", drifted)
		// PUT /apis/apps/v1/namespaces/NS/deployments/NAME
		updated, err = c.kubeclientset.AppsV1().Deployments(foo.Namespace).Update(ctx, updated,
			metav1.UpdateOptions{FieldManager: controllerAgentName})
		if isRejection(err) {
			// e.g. an admission policy capping replicas.
			return c.reportRejection(ctx, foo, deployment, "updating", err)
		}
		if err != nil {
			return fmt.Errorf("updating Deployment %s/%s: %w", foo.Namespace, foo.Spec.DeploymentName, err)
		}
		deployment = updated
		c.recorder.Eventf(foo, corev1.EventTypeNormal, EventDeploymentUpdated, "Updated Deployment %s to match the Foo's spec (%s)",
			deployment.Name, strings.Join(drifted, ", "))
	} else {
		logger.V(4).Info("Deployment matches the Foo's spec", "deployment", klog.KObj(deployment))
	}

	ready := deploymentReadyCondition(foo, deployment)
	return c.updateFooStatus(ctx, foo, deployment, ready, warningReasonFor(ready))
}

// fooStillExists asks the API server, not the cache, whether the Foo still exists as the same
// object (same UID) and is not being deleted.
func (c *Controller) fooStillExists(ctx context.Context, foo *samplev1alpha1.Foo) (bool, error) {
	// GET /apis/samplecontroller.example.com/v1alpha1/namespaces/NS/foos/NAME
	live, err := c.sampleclientset.SamplecontrollerV1alpha1().Foos(foo.Namespace).Get(ctx, foo.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		klog.FromContext(ctx).V(2).Info("Foo is gone from the API server though still in the cache; not re-creating its Deployment")
		return false, nil
	case err != nil:
		return false, fmt.Errorf("checking that Foo %s/%s still exists before re-creating its Deployment: %w", foo.Namespace, foo.Name, err)
	case live.UID != foo.UID || live.DeletionTimestamp != nil:
		klog.FromContext(ctx).V(2).Info("Foo was deleted or replaced since the cache saw it; not re-creating its Deployment")
		return false, nil
	}
	return true, nil
}

// ---------------------------------------------------------------------------------------------
// 7. The desired Deployment and what "drift" means
// ---------------------------------------------------------------------------------------------

// desiredReplicas is spec.replicas. The CRD defaults it to 1 at admission; the nil check
// covers objects stored before that default existed.
func desiredReplicas(foo *samplev1alpha1.Foo) int32 {
	if foo.Spec.Replicas == nil {
		return 1
	}
	return *foo.Spec.Replicas
}

// newDeployment is the Deployment a Foo asks for. Its controller ownerReference (controller:
// true, blockOwnerDeletion: true) marks the Foo as its one managing owner: the garbage
// collector deletes the Deployment after the Foo, and handleDeployment maps it back to the Foo.
func newDeployment(foo *samplev1alpha1.Foo) *appsv1.Deployment {
	labels := map[string]string{
		"app.kubernetes.io/name":       "nginx",
		"app.kubernetes.io/managed-by": controllerAgentName,
		fooLabel:                       foo.Name,
	}
	replicas := desiredReplicas(foo)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:            foo.Spec.DeploymentName,
			Namespace:       foo.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(foo, fooGroupVersionKind)},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			// The selector is immutable once created; it picks this Foo's pods only.
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{fooLabel: foo.Name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
				Spec: corev1.PodSpec{
					// Compliant with the restricted Pod Security Standard, so that a Foo works in
					// a namespace that enforces it: a non-root user (the unprivileged nginx image
					// runs as 101 and listens on 8080), no privilege escalation, no capabilities,
					// the runtime's default seccomp profile.
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](101),
						RunAsGroup:     ptr.To[int64](101),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:  "nginx",
						Image: fooImage,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

// driftedFields lists the fields this controller manages and may write (replicas, labels, pod
// template; the selector is checked apart, since it cannot be changed) in which the live Deployment differs from the desired one; empty means in sync.
//
// The live object has many fields we never set, filled in by the API server's defaulting
// (imagePullPolicy, restartPolicy, terminationMessagePath, ...). equality.Semantic.DeepDerivative
// compares only what desired sets: "is every field desired sets equal in live?". Labels and
// annotations others add are allowed; an extra or removed container is not.
func driftedFields(desired, live *appsv1.Deployment) []string {
	var drifted []string
	if live.Spec.Replicas == nil || *live.Spec.Replicas != *desired.Spec.Replicas {
		drifted = append(drifted, "spec.replicas")
	}
	if !equality.Semantic.DeepDerivative(desired.Labels, live.Labels) {
		drifted = append(drifted, "metadata.labels")
	}
	if templateDrifted(desired, live) {
		drifted = append(drifted, "spec.template")
	}
	return drifted
}

func templateDrifted(desired, live *appsv1.Deployment) bool {
	return len(live.Spec.Template.Spec.Containers) != len(desired.Spec.Template.Spec.Containers) ||
		!equality.Semantic.DeepDerivative(desired.Spec.Template, live.Spec.Template)
}

// setManagedFields copies the fields this controller manages from desired into updated (a
// DeepCopy of the live Deployment), leaving everything else as it is.
func setManagedFields(updated, desired *appsv1.Deployment) {
	updated.Spec.Replicas = desired.Spec.Replicas
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	maps.Copy(updated.Labels, desired.Labels)
	if templateDrifted(desired, updated) {
		// Replace the template, but keep annotations others put there: `kubectl rollout restart`
		// works by setting one, and dropping it would start another rollout.
		annotations := updated.Spec.Template.Annotations
		updated.Spec.Template = *desired.Spec.Template.DeepCopy()
		updated.Spec.Template.Annotations = annotations
	}
}

// ---------------------------------------------------------------------------------------------
// 8. Status: what we observed, written only when it changed
// ---------------------------------------------------------------------------------------------

// newReadyCondition builds the Ready condition for this generation of the Foo.
func newReadyCondition(foo *samplev1alpha1.Foo, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{
		Type:               samplev1alpha1.ConditionReady,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: foo.Generation,
	}
}

// deploymentReadyCondition reads the Deployment's status. The Deployment controller (in
// kube-controller-manager) writes that status; we only interpret it. A Deployment is ready
// when its controller has seen its latest spec (status.observedGeneration) and every desired
// replica is updated and available, with no old pods left over.
func deploymentReadyCondition(foo *samplev1alpha1.Foo, d *appsv1.Deployment) metav1.Condition {
	want := desiredReplicas(foo)
	progress := fmt.Sprintf("%d of %d replicas available", d.Status.AvailableReplicas, want)
	// Zero replicas need no rollout: a Deployment asked for none is ready as soon as none of its
	// pods is left, whether or not the Deployment controller has looked at it yet. (A new Foo
	// with replicas 0 is then Ready in its first status write, with no second write to follow.)
	observed := d.Status.ObservedGeneration >= d.Generation || (want == 0 && d.Status.Replicas == 0)
	if observed && d.Status.UpdatedReplicas == want &&
		d.Status.AvailableReplicas == want && d.Status.Replicas == want {
		return newReadyCondition(foo, metav1.ConditionTrue, samplev1alpha1.ReasonDeploymentAvailable, "Deployment "+d.Name+": "+progress)
	}
	// ReplicaFailure: the Deployment's ReplicaSet cannot create pods (a ResourceQuota, Pod
	// Security admission, a webhook). The Deployment controller copies the ReplicaSet's condition
	// at once; without it, the Foo would say "progressing" until the progress deadline (10 min).
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentReplicaFailure && cond.Status == corev1.ConditionTrue {
			return newReadyCondition(foo, metav1.ConditionFalse, samplev1alpha1.ReasonDeploymentReplicaFailure,
				"Deployment "+d.Name+": "+progress+": pods cannot be created: "+cond.Reason+": "+cond.Message)
		}
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse && cond.Reason == "ProgressDeadlineExceeded" {
			return newReadyCondition(foo, metav1.ConditionFalse, samplev1alpha1.ReasonDeploymentFailed,
				"Deployment "+d.Name+": "+progress+": "+cond.Message)
		}
	}
	return newReadyCondition(foo, metav1.ConditionFalse, samplev1alpha1.ReasonDeploymentProgressing, "Deployment "+d.Name+": "+progress)
}

// warningReasonFor names the Warning event to record when a Ready condition read from the
// Deployment is new: a failure someone must act on. Progress and success are not warnings.
func warningReasonFor(ready metav1.Condition) string {
	switch ready.Reason {
	case samplev1alpha1.ReasonDeploymentReplicaFailure, samplev1alpha1.ReasonDeploymentFailed:
		return ready.Reason
	}
	return ""
}

// isRejection tells a write the API server refused on its merits (422 Invalid from an admission
// policy, 403 Forbidden from a ResourceQuota, a webhook or RBAC, 400 Bad Request, 413 too large)
// from a hiccup that the next retry absorbs (409 Conflict, AlreadyExists, timeouts, 429, 5xx). A rejection is
// something the Foo's owner must be told about: only they can change the spec, the policy or
// the quota.
func isRejection(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) ||
		apierrors.IsRequestEntityTooLargeError(err)
}

// reportRejection puts the API server's refusal on the Foo: Ready=False with reason
// DeploymentRejected and the server's own message, and a Warning Event when it is new.
// It still returns the error, so that the queue retries with backoff: a quota can free up and a
// policy can change, and this controller watches neither. Once maxRetries is reached the key is
// dropped until the next resync or the next change to the Foo or its Deployment; the status
// keeps saying why.
//
// The message is renewed only when the spec, the verb or the kind of refusal (Invalid,
// Forbidden, ...) changes. Every status write comes back as a Foo update event, which enqueues
// the key at once, past the backoff; a refusal worded differently on each attempt (a webhook
// naming a request ID, a quota's changing usage) would otherwise become a write-and-retry loop
// at the client's full QPS. The controller's log has every attempt's answer.
func (c *Controller) reportRejection(ctx context.Context, foo *samplev1alpha1.Foo, deployment *appsv1.Deployment, verb string, err error) error {
	kind := fmt.Sprintf("the API server refused %s Deployment %s (%s): ", verb, foo.Spec.DeploymentName, apierrors.ReasonForError(err))
	msg := kind + truncate(err.Error(), maxRejectionMessage)
	if prev := meta.FindStatusCondition(foo.Status.Conditions, samplev1alpha1.ConditionReady); prev != nil &&
		prev.Reason == samplev1alpha1.ReasonDeploymentRejected && prev.ObservedGeneration == foo.Generation &&
		strings.HasPrefix(prev.Message, kind) {
		msg = prev.Message
	}
	cond := newReadyCondition(foo, metav1.ConditionFalse, samplev1alpha1.ReasonDeploymentRejected, msg)
	return errors.Join(fmt.Errorf("%s Deployment %s/%s: %w", verb, foo.Namespace, foo.Spec.DeploymentName, err),
		c.updateFooStatus(ctx, foo, deployment, cond, EventDeploymentRejected))
}

// maxRejectionMessage bounds the server's answer quoted in a condition (the schema allows 32768
// characters in a condition message; a webhook may answer with more).
const maxRejectionMessage = 4096

// truncate cuts s to at most max bytes without splitting a UTF-8 character.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// updateFooStatus computes the Foo's new status from what we observed and writes it through
// the /status subresource, but only if it differs semantically from the status the Foo has:
// a Foo that is already converged costs no API request at all. When warningReason is set and
// the write changed the Ready condition's reason or message, a Warning event with that reason
// is recorded: a problem that persists across syncs is announced once, not on every resync, and
// not before the status that records it is written (a failed write is retried, and would
// otherwise announce it again on each attempt).
func (c *Controller) updateFooStatus(ctx context.Context, foo *samplev1alpha1.Foo, deployment *appsv1.Deployment,
	ready metav1.Condition, warningReason string) error {
	// DeepCopy: foo is the cache's object. Modifying it in place would change what every other
	// reader of the cache sees, and would make the comparison below always "equal".
	fooCopy := foo.DeepCopy()
	fooCopy.Status.ObservedGeneration = foo.Generation
	fooCopy.Status.AvailableReplicas = 0
	if deployment != nil {
		fooCopy.Status.AvailableReplicas = deployment.Status.AvailableReplicas
	}
	previous := meta.FindStatusCondition(foo.Status.Conditions, samplev1alpha1.ConditionReady)
	// SetStatusCondition keeps lastTransitionTime when the condition's status did not change.
	meta.SetStatusCondition(&fooCopy.Status.Conditions, ready)

	if equality.Semantic.DeepEqual(foo.Status, fooCopy.Status) {
		klog.FromContext(ctx).V(4).Info("Status unchanged; no write needed")
		return nil
	}

	// PUT /apis/samplecontroller.example.com/v1alpha1/namespaces/NS/foos/NAME/status
	// The status subresource changes status only (the spec in our copy is ignored), and the
	// main resource ignores status changes: users own spec, the controller owns status.
	klog.FromContext(ctx).V(2).Info("Status changed; updating it", "ready", ready.Status, "reason", ready.Reason,
		"availableReplicas", fooCopy.Status.AvailableReplicas)
	_, err := c.sampleclientset.SamplecontrollerV1alpha1().Foos(foo.Namespace).UpdateStatus(ctx, fooCopy,
		metav1.UpdateOptions{FieldManager: controllerAgentName})
	if apierrors.IsNotFound(err) {
		return nil // deleted while we worked; nothing left to report on
	}
	if err != nil {
		return err
	}
	if warningReason != "" && (previous == nil || previous.Reason != ready.Reason || previous.Message != ready.Message) {
		c.recorder.Event(foo, corev1.EventTypeWarning, warningReason, ready.Message)
	}
	return nil
}
