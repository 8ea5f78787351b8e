// Command controller-runtime is the Foo controller written with controller-runtime the way the
// kubebuilder book writes one: a Reconciler that reads through the manager's cache, creates or
// updates the owned Deployment, and writes the status. It exists to be measured beside
// sample-controller (hack/bench-peers.sh, docs/benchmarks.md), so it does what sample-controller
// does for a Foo, with no Events (the book's tutorial records none), no metrics server, no leader
// election and controller-runtime's defaults for everything else: its rest.Config (no client-side
// rate limit) and one reconcile at a time unless --max-concurrent-reconciles says otherwise.
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	samplev1 "example.com/sample-controller/pkg/apis/samplecontroller/v1"
)

const fooLabel = "samplecontroller.example.com/foo"

// FooReconciler keeps each Foo's Deployment as its spec asks and reports it in the status.
type FooReconciler struct {
	client.Client
	Scheme *runtime.Scheme
}

// Reconcile is called with a Foo's key whenever the Foo or a Deployment it owns changes.
func (r *FooReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var foo samplev1.Foo
	if err := r.Get(ctx, req.NamespacedName, &foo); err != nil {
		// Deleted: the garbage collector removes its Deployment through the ownerReference.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !foo.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}

	var deployment appsv1.Deployment
	err := r.Get(ctx, client.ObjectKey{Namespace: foo.Namespace, Name: foo.Spec.Deployment.Name}, &deployment)
	switch {
	case apierrors.IsNotFound(err):
		desired := newDeployment(&foo)
		if err := controllerutil.SetControllerReference(&foo, desired, r.Scheme); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, desired); err != nil {
			return ctrl.Result{}, err
		}
		deployment = *desired
	case err != nil:
		return ctrl.Result{}, err
	case !metav1.IsControlledBy(&deployment, &foo):
		return ctrl.Result{}, r.setStatus(ctx, &foo, 0, metav1.ConditionFalse, samplev1.ReasonDeploymentNotOwned,
			fmt.Sprintf("Deployment %s already exists and is not controlled by this Foo", deployment.Name))
	case *deployment.Spec.Replicas != replicas(&foo):
		deployment.Spec.Replicas = ptr.To(replicas(&foo))
		if err := r.Update(ctx, &deployment); err != nil {
			return ctrl.Result{}, err
		}
	}

	available := deployment.Status.AvailableReplicas
	if available >= replicas(&foo) && deployment.Status.ObservedGeneration >= deployment.Generation {
		return ctrl.Result{}, r.setStatus(ctx, &foo, available, metav1.ConditionTrue, samplev1.ReasonDeploymentAvailable,
			"Every desired replica is available")
	}
	return ctrl.Result{}, r.setStatus(ctx, &foo, available, metav1.ConditionFalse, samplev1.ReasonDeploymentProgressing,
		fmt.Sprintf("%d of %d replicas available", available, replicas(&foo)))
}

// setStatus writes the Foo's status, only when it changed (as sample-controller does).
func (r *FooReconciler) setStatus(ctx context.Context, foo *samplev1.Foo, available int32, status metav1.ConditionStatus, reason, message string) error {
	updated := foo.DeepCopy()
	updated.Status.AvailableReplicas = available
	updated.Status.ObservedGeneration = foo.Generation
	meta.SetStatusCondition(&updated.Status.Conditions, metav1.Condition{Type: samplev1.ConditionReady, Status: status,
		Reason: reason, Message: message, ObservedGeneration: foo.Generation})
	if equality.Semantic.DeepEqual(foo.Status, updated.Status) {
		return nil
	}
	return r.Status().Update(ctx, updated)
}

func replicas(foo *samplev1.Foo) int32 {
	if foo.Spec.Replicas == nil {
		return 1
	}
	return *foo.Spec.Replicas
}

// newDeployment is the Deployment sample-controller makes for a Foo (its deployment.go).
func newDeployment(foo *samplev1.Foo) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": "nginx", "app.kubernetes.io/managed-by": "controller-runtime-peer", fooLabel: foo.Name}
	image := foo.Spec.Deployment.Image
	if image == "" {
		image = samplev1.DefaultImage
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: foo.Spec.Deployment.Name, Namespace: foo.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas(foo)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{fooLabel: foo.Name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](101),
						RunAsGroup: ptr.To[int64](101), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "nginx", Image: image, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}
}

// SetupWithManager watches Foos, and the Deployments they own (mapped back to their Foo).
func (r *FooReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&samplev1.Foo{}).
		Owns(&appsv1.Deployment{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func main() {
	var namespace, metricsAddr, probeAddr string
	var workers int
	flag.StringVar(&namespace, "namespace", "", "watch only this namespace (empty: all)")
	flag.IntVar(&workers, "max-concurrent-reconciles", 1, "reconciles in parallel (controller-runtime's default: 1)")
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "metrics address (\"0\": off)")
	flag.StringVar(&probeAddr, "health-probe-bind-address", "0", "probes address (\"0\": off)")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse() // also --kubeconfig, which controller-runtime registers
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(samplev1.AddToScheme(scheme))
	options := ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: metricsAddr}, HealthProbeBindAddress: probeAddr}
	if namespace != "" {
		options.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{namespace: {}}}
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), options)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := (&FooReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme()}).SetupWithManager(mgr, workers); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if probeAddr != "0" {
		utilruntime.Must(mgr.AddHealthzCheck("healthz", healthz.Ping))
		utilruntime.Must(mgr.AddReadyzCheck("readyz", healthz.Ping))
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
