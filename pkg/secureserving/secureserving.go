// Package secureserving serves a handler over HTTPS to callers the Kubernetes API server vouches
// for, the way kube-controller-manager serves its metrics and profiles: the caller's bearer
// token is checked with a TokenReview, and its request (a GET of a non-resource URL such as
// /metrics) with a SubjectAccessReview. Everything is k8s.io/apiserver's own code: its secure
// serving (TLS, certificate files reloaded when they change, a self-signed certificate when none
// is given) and its delegating authenticator, authorizer and request filters.
package secureserving

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/authorization/union"
	genericfilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"

	"example.com/sample-controller/pkg/httpserver"
)

// Config says where and how to serve.
type Config struct {
	// Name names the server in logs ("metrics").
	Name string
	// Address is host:port; port 0 picks a free port.
	Address string
	// CertFile and KeyFile are the serving certificate and its key, PEM. Both empty: a
	// self-signed certificate is generated in memory at start (clients must then skip
	// verification, or pin it). The files are re-read when they change, so a certificate
	// renewed on disk (by cert-manager, say) is served without a restart.
	CertFile, KeyFile string
	// Client asks the API server the TokenReviews and SubjectAccessReviews; the controller's
	// own identity needs create on both (the system:auth-delegator ClusterRole has exactly that).
	Client kubernetes.Interface
}

// The answers of the API server are cached, as kube-controller-manager does, so that a
// scrape every few seconds costs the API server one review per token and path per TTL.
const (
	tokenReviewTTL = 10 * time.Second
	allowTTL       = 10 * time.Second
	denyTTL        = 10 * time.Second
	reviewTimeout  = 10 * time.Second
	shutdownGrace  = 5 * time.Second
)

// Start serves h on cfg.Address until ctx ends, to authenticated and authorized callers only,
// and returns the address it listens on (also logged, with server=cfg.Name). Errors in the
// configuration or a port that cannot be bound are returned at once.
func Start(ctx context.Context, cfg Config, h http.Handler) (string, error) {
	logger := klog.FromContext(ctx)
	ln, _, err := options.CreateListener("tcp", cfg.Address, net.ListenConfig{})
	if err != nil {
		return "", fmt.Errorf("serving %s on %s: %w", cfg.Name, cfg.Address, err)
	}
	serving := options.NewSecureServingOptions()
	serving.Listener = ln
	serving.BindAddress = ln.Addr().(*net.TCPAddr).IP
	serving.BindPort = ln.Addr().(*net.TCPAddr).Port
	serving.ServerCert.CertKey.CertFile, serving.ServerCert.CertKey.KeyFile = cfg.CertFile, cfg.KeyFile
	// No directory: a generated certificate stays in memory (the container's file system is
	// read-only, and a key on disk is one more thing to protect).
	serving.ServerCert.CertDirectory, serving.ServerCert.PairName = "", ""
	// HTTP/2 off, as kubebuilder's scaffold does since the HTTP/2 "rapid reset" attacks: a
	// scrape needs nothing HTTP/2 brings.
	serving.DisableHTTP2Serving = true
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		ln.Close()
		return "", fmt.Errorf("serving %s: give both a certificate and its key, or neither", cfg.Name)
	}
	if cfg.CertFile == "" {
		host, _ := os.Hostname() // the Pod's name in a cluster
		if err := serving.MaybeDefaultWithSelfSignedCerts(host, []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}); err != nil {
			ln.Close()
			return "", fmt.Errorf("serving %s: %w", cfg.Name, err)
		}
	}
	var info *server.SecureServingInfo
	if err := serving.ApplyTo(&info); err != nil {
		ln.Close()
		return "", fmt.Errorf("serving %s: %w", cfg.Name, err)
	}

	handler, err := withAuthenticationAndAuthorization(h, cfg.Client)
	if err != nil {
		ln.Close()
		return "", fmt.Errorf("serving %s: %w", cfg.Name, err)
	}
	// Serve stops when ctx ends, giving requests in flight shutdownGrace to finish.
	if _, _, err := info.Serve(httpserver.WithDeadlines(handler), shutdownGrace, ctx.Done()); err != nil {
		ln.Close()
		return "", fmt.Errorf("serving %s: %w", cfg.Name, err)
	}
	logger.Info("Serving", "server", cfg.Name, "address", ln.Addr().String(), "scheme", "https",
		"selfSignedCertificate", cfg.CertFile == "")
	return ln.Addr().String(), nil
}

// withAuthenticationAndAuthorization puts the checks in front of h, in the order
// kube-controller-manager's handler chain has them (outermost last): work out what the request
// is, then who sends it (401 if no one), then whether they may (403 if not).
func withAuthenticationAndAuthorization(h http.Handler, client kubernetes.Interface) (http.Handler, error) {
	authn, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                nil, // no anonymous access: a request without a token is refused
		TokenAccessReviewClient:  client.AuthenticationV1(),
		TokenAccessReviewTimeout: reviewTimeout,
		WebhookRetryBackoff:      options.DefaultAuthWebhookRetryBackoff(),
		CacheTTL:                 tokenReviewTTL,
	}.New()
	if err != nil {
		return nil, fmt.Errorf("setting up delegated authentication: %w", err)
	}
	delegated, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             allowTTL,
		DenyCacheTTL:              denyTTL,
		WebhookRetryBackoff:       options.DefaultAuthWebhookRetryBackoff(),
	}.New()
	if err != nil {
		return nil, fmt.Errorf("setting up delegated authorization: %w", err)
	}
	// system:masters may do anything in any cluster; asking would only cost a review.
	authz, err := union.New(
		union.NamedAuthorizer{AuthorizerName: "privileged-groups", Authorizer: authorizerfactory.NewPrivilegedGroups(user.SystemPrivilegedGroup)},
		union.NamedAuthorizer{AuthorizerName: "delegated", Authorizer: delegated},
	)
	if err != nil {
		return nil, err
	}
	h = genericfilters.WithAuthorization(h, authz, scheme.Codecs)
	h = genericfilters.WithAuthentication(h, authn, genericfilters.Unauthorized(scheme.Codecs), nil, nil)
	h = genericfilters.WithRequestInfo(h, &request.RequestInfoFactory{})
	return h, nil
}
