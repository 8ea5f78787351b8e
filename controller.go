// The teaching core: the controller loop, one Foo from the API server's event to its status.
//  1. NewController        shared informers (initial list, then watch) feed event handlers; listers read the cache.
//  2. Event handlers       turn "something changed" into a key in a rate-limited workqueue.
//  3. Run and the workers  wait for the caches, then take keys off the queue one at a time.
//  4. handleErr            forget on success, retry with backoff, drop after maxRetries.
//  5. syncFoo              read, decide, act, report: desired state (spec) against observed state.
//
// Beside it: startup.go (GVK -> GVR through a RESTMapper), deployment.go (desired Deployment,
// drift), status.go (Ready condition, status write). Guided read: docs/walkthrough.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	appsinformers "k8s.io/client-go/informers/apps/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
	clientset "example.com/sample-controller/pkg/generated/clientset/versioned"
	samplescheme "example.com/sample-controller/pkg/generated/clientset/versioned/scheme"
	informers "example.com/sample-controller/pkg/generated/informers/externalversions/samplecontroller/v1"
	listers "example.com/sample-controller/pkg/generated/listers/samplecontroller/v1"
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

	// conflictSafetyNet is when a key whose write met a 409 Conflict comes back if the watch
	// event of the newer version somehow does not bring it back first (see handleErr); it
	// doubles while conflicts repeat, up to 5 minutes.
	conflictSafetyNet = 30 * time.Second

	// expectationTimeout is how long a sync waits for the Deployment cache to show a Deployment
	// this controller created (see expectations.go) before it gives up waiting and creates it
	// again. After an API server restart the caches caught up within about 20s on the local
	// cluster; a minute leaves room without leaving a lost Deployment missing for long.
	expectationTimeout = time.Minute

	// nameTakenRecheck is when a Foo whose Deployment name is held by another's unwatched
	// Deployment is first checked again; it doubles while the name stays taken, up to 5 minutes.
	nameTakenRecheck = 5 * time.Second

	// deploymentNameIndex indexes Foos by "namespace/spec.deployment.name", so that a Deployment
	// nobody owns can be mapped to the Foo that wants its name (see handleDeployment).
	deploymentNameIndex = "spec.deployment.name"
)

// fooGroupVersionKind is what a Foo *is* (its Kind, in an API group and version). The API
// server serves it as a *resource* (foos); startup.go shows how to get from one to the other.
var fooGroupVersionKind = samplev1.SchemeGroupVersion.WithKind("Foo")

// ---------------------------------------------------------------------------------------------
// 1. The controller and its wiring
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
	// conflictBackoff paces the retries of a key whose writes meet 409 Conflicts, apart from
	// the workqueue's own backoff, which is for errors (see handleErr).
	conflictBackoff workqueue.TypedRateLimiter[cache.ObjectName]
	// expectations remembers the Deployments we created until the cache shows them, so that a
	// sync in between does not create them again (expectations.go).
	expectations *deploymentExpectations
	// ownWrites remembers the versions our updates replaced until the cache shows the writes,
	// so that a sync in between does not write again from the past (expectations.go).
	ownWrites *ownWrites
	// nameTakenBackoff paces the re-checks of a Foo whose Deployment name is held by a
	// Deployment the informer does not watch (see existingDeployment).
	nameTakenBackoff workqueue.TypedRateLimiter[cache.ObjectName]

	// Events are recorded asynchronously and sent through eventsClient: a client of its own,
	// so that events never wait in the client-side rate limiter behind (or delay) the writes
	// that reconcile Foos.
	eventsClient     typedcorev1.EventsGetter
	eventBroadcaster record.EventBroadcaster
	recorder         record.EventRecorder
}

// Register Foo in client-go's scheme so the event recorder can turn a *Foo into an
// ObjectReference (it needs the Foo's GroupVersionKind for involvedObject). The scheme is shared
// by every client in the process and is not safe to change while one decodes, so this happens
// once, before main starts anything.
func init() {
	utilruntime.Must(samplescheme.AddToScheme(scheme.Scheme))
}

// NewController wires the informers to the event handlers and creates the workqueue. Nothing
// runs until the informers are started and Run is called.
func NewController(
	ctx context.Context,
	kubeclientset kubernetes.Interface,
	sampleclientset clientset.Interface,
	eventsClient typedcorev1.EventsGetter,
	deploymentInformer appsinformers.DeploymentInformer,
	fooInformer informers.FooInformer) (*Controller, error) {
	logger := klog.FromContext(ctx)

	// Not ctx itself: cancelling it (SIGTERM) would stop the broadcaster at once, dropping the
	// Events of the syncs the workers still finish. Run shuts it down when they are done.
	eventBroadcaster := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
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
		eventsClient:     eventsClient,
		eventBroadcaster: eventBroadcaster,
		recorder:         recorder,
		expectations:     newDeploymentExpectations(expectationTimeout),
		ownWrites:        newOwnWrites(expectationTimeout),
	}
	c.syncHandler = c.syncFoo
	c.conflictBackoff = workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](conflictSafetyNet, 5*time.Minute)
	c.nameTakenBackoff = workqueue.NewTypedItemExponentialFailureRateLimiter[cache.ObjectName](nameTakenRecheck, 5*time.Minute)

	// An index is a second key the cache can look objects up by, kept up to date as the watch
	// delivers changes. Indexers must be added before the informer starts.
	if err := fooInformer.Informer().AddIndexers(cache.Indexers{deploymentNameIndex: fooDeploymentNameIndexFunc}); err != nil {
		return nil, fmt.Errorf("adding the %s index to the Foo informer: %w", deploymentNameIndex, err)
	}

	logger.Info("Setting up event handlers")
	// Informer: a Reflector fills the cache with every Foo, then WATCHes for changes from that
	// point on (as of client-go v0.37, both in one streaming watch-list request where the server
	// supports it, else a LIST then a WATCH). Every change lands in the cache and then calls these
	// handlers. Handlers must be quick and must not block: they only enqueue a key.
	if _, err := fooInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj interface{}) { c.enqueueFoo(ctx, obj, "added") },
		UpdateFunc: func(oldObj, newObj interface{}) {
			// The informer also calls UpdateFunc on every resync (the same object, unchanged
			// resourceVersion). Resync is the safety net that retries a dropped key and
			// re-checks every Foo; it is cheap here because a converged Foo costs no writes.
			if oldObj.(*samplev1.Foo).ResourceVersion == newObj.(*samplev1.Foo).ResourceVersion {
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
		DeleteFunc: func(obj interface{}) { c.fooDeleted(ctx, obj) },
	}); err != nil {
		return nil, fmt.Errorf("adding Foo event handlers: %w", err)
	}

	// We also watch Deployments: when one that a Foo owns changes (its status moves, or someone
	// edits or deletes it), the owning Foo needs a sync. This is what makes the controller
	// level-triggered on its children as well as on its own objects. The informer asks only for
	// Deployments with our label (a label selector on its list and watch, see main.go), so it
	// never caches the rest of the cluster's.
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
		DeleteFunc: func(obj interface{}) { c.deploymentDeleted(ctx, obj) },
	}); err != nil {
		return nil, fmt.Errorf("adding Deployment event handlers: %w", err)
	}

	return c, nil
}

// fooDeploymentNameIndexFunc indexes a Foo under "namespace/spec.deployment.name".
func fooDeploymentNameIndexFunc(obj interface{}) ([]string, error) {
	foo, ok := obj.(*samplev1.Foo)
	if !ok {
		return nil, nil
	}
	return []string{cache.NewObjectName(foo.Namespace, foo.Spec.Deployment.Name).String()}, nil
}

// ---------------------------------------------------------------------------------------------
// 2. Event handlers: from "something changed" to a key in the queue
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
	// V(4): events are many (every resync, every status write of ours comes back as one); -v=2
	// keeps to what the syncs decide and write.
	klog.FromContext(ctx).V(4).Info("Foo event; enqueueing", "foo", key, "event", why)
	c.workqueue.Add(key)
}

// handleDeployment finds the Foo that a changed Deployment matters to, and enqueues it:
//   - a Deployment controlled by a Foo (its controller ownerReference names our group, the Foo
//     kind, and the UID of a Foo in our cache) goes to that Foo;
//   - any other (watched) Deployment goes to the Foos that want its name (spec.deployment.name):
//     they could not create their Deployment while this one held the name, and may now. (A name
//     held by an unlabelled Deployment, which we do not watch, is checked again on a timer.)
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
			logger.V(4).Info("Owned Deployment changed; enqueueing its Foo", "deployment", klog.KObj(deployment), "foo", klog.KObj(foo))
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
		foo := obj.(*samplev1.Foo)
		logger.V(4).Info("Deployment not controlled by this Foo changed; enqueueing the Foo that wants its name",
			"deployment", klog.KObj(deployment), "foo", klog.KObj(foo))
		c.workqueue.Add(cache.MetaObjectToName(foo))
	}
}

// deploymentDeleted: a Deployment we were waiting to see in the cache is gone, so the next sync
// must not wait for it any longer but create it anew. Then, as for any change, its Foo is synced.
func (c *Controller) deploymentDeleted(ctx context.Context, obj interface{}) {
	if name, err := cache.DeletionHandlingObjectToName(obj); err == nil {
		c.expectations.observed(name)
		c.ownWrites.forget(deploymentResource, name)
	}
	c.handleDeployment(ctx, obj)
}

// fooDeleted: nothing of ours to wait for on a deleted Foo; as for any change, its key is
// synced (and finds no Foo).
func (c *Controller) fooDeleted(ctx context.Context, obj interface{}) {
	if name, err := cache.DeletionHandlingObjectToName(obj); err == nil {
		c.ownWrites.forget(fooResource, name)
	}
	c.enqueueFoo(ctx, obj, "deleted")
}

// resolveControllerRef returns the Foo that a controller ownerReference points to, or nil if
// it points to something else. Group and Kind tell us it is a Foo at all; the name finds the
// Foo in the cache; the UID tells us it is *this* Foo and not an earlier one of the same name
// that was deleted (whose Deployment the garbage collector is about to remove).
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *samplev1.Foo {
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

// HasSynced reports whether both informers' caches hold every object (the initial list). It is
// the readiness probe: a standby replica (not the leader) also keeps its caches warm, and is
// ready to take over.
func (c *Controller) HasSynced() bool {
	return c.deploymentsSynced() && c.foosSynced()
}

// ---------------------------------------------------------------------------------------------
// 3. Run and the workers
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
	// one that is already there. So no worker starts before both caches hold every object.
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
// 4. handleErr: forget, retry, or drop
// ---------------------------------------------------------------------------------------------

func (c *Controller) handleErr(ctx context.Context, err error, key cache.ObjectName) {
	logger := klog.FromContext(ctx)
	switch {
	case err == nil:
		// Success resets the key's backoff, so its next failure starts again at 5ms.
		metrics.ReconcileTotal.WithLabelValues(metrics.ResultSuccess).Inc()
		c.workqueue.Forget(key)
		c.conflictBackoff.Forget(key)

	case apierrors.IsConflict(err):
		// 409 Conflict: we wrote with a resourceVersion that is no longer current (optimistic
		// concurrency): our cache was behind, nothing is wrong. The newer version is on its way
		// through the watch, and its event brings the key back; retrying before the cache has
		// it would only conflict again (after an API server restart the cache can be many
		// seconds behind). So no retry now: this requeue, 30s later and backing off, is only the
		// safety net. It does not count toward maxRetries: that budget is for errors.
		metrics.ReconcileTotal.WithLabelValues(metrics.ResultConflict).Inc()
		conflicts := c.conflictBackoff.NumRequeues(key)
		if conflicts >= maxRetries {
			logger.Error(err, "Conflict after conflict writing this Foo's objects: is another process writing them?", "foo", key, "conflicts", conflicts)
		} else {
			logger.V(4).Info("Conflict writing; requeueing", "foo", key, "err", err)
		}
		c.workqueue.AddAfter(key, c.conflictBackoff.When(key))

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
		c.conflictBackoff.Forget(key)
	}
}

// ---------------------------------------------------------------------------------------------
// 5. syncFoo: read, decide, act, report
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

	// Read the Foo from the lister (the cache), not with a GET: it costs nothing, and the
	// informer keeps it current. Objects from the cache are shared: never modify them.
	foo, err := c.foosLister.Foos(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		logger.V(2).Info("Foo no longer exists; the garbage collector removes its Deployment")
		c.nameTakenBackoff.Forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if c.ownWrites.cacheIsBehind(fooResource, key, foo.ResourceVersion) {
		// The cache still shows the Foo as it was before our last status write: a status
		// computed from it would be written with a stale resourceVersion (a sure 409). The
		// write's watch event brings the key back.
		logger.V(4).Info("Waiting for the Foo cache to show our status write")
		return nil
	}
	// A Foo deleted with propagationPolicy=Foreground stays until the garbage collector has
	// deleted its Deployment: re-creating the Deployment now would fight the collector.
	if foo.DeletionTimestamp != nil {
		logger.V(2).Info("Foo is being deleted; leaving its Deployment to the garbage collector")
		return nil
	}
	if cond := invalidSpecCondition(foo); cond != nil {
		return c.updateFooStatus(ctx, foo, nil, *cond)
	}

	// Act: the Deployment must exist...
	deploymentName := cache.NewObjectName(foo.Namespace, foo.Spec.Deployment.Name)
	deployment, err := c.deploymentsLister.Deployments(foo.Namespace).Get(foo.Spec.Deployment.Name)
	switch {
	case apierrors.IsNotFound(err):
		if wait, pending := c.expectations.pending(deploymentName); pending {
			// We created it moments ago (or were told it exists): the cache is behind, and its
			// add event brings the Foo back. Creating again would only earn a 409.
			logger.V(4).Info("Waiting for the Deployment cache to show the Deployment", "deployment", deploymentName, "for", wait)
			c.workqueue.AddAfter(key, wait) // in case that event never comes
			return nil
		}
		if deployment, err = c.createDeployment(ctx, foo); deployment == nil {
			return err // nothing to build, waiting for the cache, or a refusal already reported
		}
	case err != nil:
		return err
	default:
		c.expectations.observed(deploymentName)
		if c.ownWrites.cacheIsBehind(deploymentResource, deploymentName, deployment.ResourceVersion) {
			// As above, for the Deployment we updated moments ago: its event brings the Foo back.
			logger.V(4).Info("Waiting for the Deployment cache to show our update", "deployment", deploymentName)
			return nil
		}
	}

	// ...be ours: metav1.IsControlledBy compares the controller ownerReference's UID with the
	// Foo's. A UID is unique across the cluster and across time, so a match also proves group
	// and kind. Someone else's Deployment is never touched.
	if !metav1.IsControlledBy(deployment, foo) {
		logger.V(2).Info("Deployment is not controlled by this Foo; leaving it alone", "deployment", klog.KObj(deployment),
			"controller", metav1.GetControllerOf(deployment))
		return c.updateFooStatus(ctx, foo, nil, notOwnedCondition(foo, deployment))
	}

	// ...select the Foo's pods (a selector cannot be changed, only reported)...
	desired := newDeployment(foo)
	if selectorMismatch(desired, deployment) {
		logger.V(2).Info("Deployment's selector differs from the Foo's; reporting it", "deployment", klog.KObj(deployment))
		return c.updateFooStatus(ctx, foo, deployment, selectorMismatchCondition(foo, desired, deployment))
	}

	// ...and match the spec in every field we manage.
	if deployment, err = c.repairDrift(ctx, foo, desired, deployment); deployment == nil {
		return err // a refusal, already reported
	}

	// Report: what the Deployment's own status says, in the Foo's status.
	return c.updateFooStatus(ctx, foo, deployment, deploymentReadyCondition(foo, deployment))
}
