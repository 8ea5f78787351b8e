package secureserving

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// privilegedGroup may do anything in any cluster: asking about its members would only cost a
// review.
const privilegedGroup = "system:masters"

// delegation asks the API server who sends a request (TokenReview) and whether they may make it
// (SubjectAccessReview on the request's non-resource path and verb), as kube-controller-manager
// does for its /metrics, and caches both answers.
type delegation struct {
	client kubernetes.Interface
	now    func() time.Time

	users     answers[*authenticationv1.UserInfo] // sha256(token) -> user; nil: not authenticated
	decisions answers[bool]                       // user, groups, verb, path -> allowed
}

func newDelegation(client kubernetes.Interface) *delegation {
	return &delegation{client: client, now: time.Now,
		users: answers[*authenticationv1.UserInfo]{ttl: tokenReviewTTL}, decisions: answers[bool]{ttl: allowTTL}}
}

// wrap puts the checks in front of h: who sends the request (401 if no one the API server
// knows), then whether they may (403 if not).
func (d *delegation) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger := klog.FromContext(r.Context())
		user, err := d.authenticate(r)
		if err != nil {
			// Not the caller's fault (the API server is unreachable, or refuses our review):
			// logged here, where an operator looks, and still a 401 for the caller.
			logger.Error(err, "Cannot authenticate a request", "path", r.URL.Path)
		}
		if user == nil {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		verb, path := strings.ToLower(r.Method), r.URL.Path
		allowed, err := d.authorize(r.Context(), user, verb, path)
		if err != nil {
			logger.Error(err, "Cannot authorize a request", "user", user.Username, "verb", verb, "path", path)
			http.Error(w, fmt.Sprintf("Authorization error (user=%s, verb=%s, path=%s): %v", user.Username, verb, path, err), http.StatusInternalServerError)
			return
		}
		if !allowed {
			http.Error(w, fmt.Sprintf("forbidden: User %q cannot %s path %q", user.Username, verb, path), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authenticate returns the user a request's bearer token belongs to, or nil.
func (d *delegation) authenticate(r *http.Request) (*authenticationv1.UserInfo, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token = strings.TrimSpace(token); !ok || token == "" {
		return nil, nil
	}
	key := fmt.Sprintf("%x", sha256.Sum256([]byte(token))) // the cache never holds a token itself
	if user, ok := d.users.get(key, d.now()); ok {
		return user, nil
	}
	var status authenticationv1.TokenReviewStatus
	err := review(r.Context(), func(ctx context.Context) error {
		answer, err := d.client.AuthenticationV1().TokenReviews().Create(ctx,
			&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err == nil {
			status = answer.Status
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("TokenReview: %w", err)
	}
	var user *authenticationv1.UserInfo
	if status.Authenticated {
		user = &status.User
	}
	d.users.put(key, user, d.now())
	return user, nil
}

// authorize says whether user may do verb on the non-resource path.
func (d *delegation) authorize(ctx context.Context, user *authenticationv1.UserInfo, verb, path string) (bool, error) {
	if slices.Contains(user.Groups, privilegedGroup) {
		return true, nil
	}
	key := fmt.Sprintf("%q %q %q %v %s %s", user.Username, user.UID, user.Groups, user.Extra, verb, path)
	if allowed, ok := d.decisions.get(key, d.now()); ok {
		return allowed, nil
	}
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	var allowed bool
	err := review(ctx, func(ctx context.Context) error {
		answer, err := d.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
				NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb}},
		}, metav1.CreateOptions{})
		if err == nil {
			allowed = answer.Status.Allowed
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("SubjectAccessReview: %w", err)
	}
	d.decisions.put(key, allowed, d.now())
	return allowed, nil
}

// review makes one review, bounded by reviewTimeout, retried (0.5s, growing by half, five
// times) while the API server cannot answer; a refusal (403) or a bad request is not retried.
func review(ctx context.Context, create func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, reviewTimeout)
	defer cancel()
	backoff := wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
	return retry.OnError(backoff, func(err error) bool {
		return ctx.Err() == nil && (apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
			apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) || !isAPIStatus(err))
	}, func() error { return create(ctx) })
}

func isAPIStatus(err error) bool {
	_, ok := err.(apierrors.APIStatus)
	return ok
}

// answers caches the API server's answers for ttl. Its keys come from callers (a token's hash),
// so it is bounded: past maxAnswers, expired answers go, and if none has, all do.
type answers[V any] struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]answer[V]
}

type answer[V any] struct {
	value   V
	expires time.Time
}

const maxAnswers = 4096

func (a *answers[V]) get(key string, now time.Time) (V, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.entries[key]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.value, true
}

func (a *answers[V]) put(key string, v V, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.entries == nil {
		a.entries = map[string]answer[V]{}
	}
	if len(a.entries) >= maxAnswers {
		for k, e := range a.entries {
			if !now.Before(e.expires) {
				delete(a.entries, k)
			}
		}
		if len(a.entries) >= maxAnswers {
			clear(a.entries)
		}
	}
	a.entries[key] = answer[V]{value: v, expires: now.Add(a.ttl)}
}
