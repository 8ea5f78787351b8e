package secureserving

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2/ktesting"
)

// reviewer is a fake API server that answers TokenReviews (it knows a few tokens) and
// SubjectAccessReviews (it lets some users GET some paths), over HTTP as the real one does.
type reviewer struct {
	client kubernetes.Interface
	mu     sync.Mutex
	users  map[string][]string            // token -> username, groups...
	allow  map[string]map[string]struct{} // username -> paths
	asked  []authorizationv1.SubjectAccessReviewSpec
	tokens int  // TokenReviews answered
	refuse bool // answer every review 403, as an API server does to a controller without the RBAC
}

func newReviewer(t *testing.T) *reviewer {
	r := &reviewer{users: map[string][]string{}, allow: map[string]map[string]struct{}{}}
	answer := func(w http.ResponseWriter, req *http.Request, obj interface{}, review func()) {
		r.mu.Lock()
		refuse := r.refuse
		r.mu.Unlock()
		if refuse {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"reviews are forbidden"}`)
			return
		}
		if err := json.NewDecoder(req.Body).Decode(obj); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		review()
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(obj)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", func(w http.ResponseWriter, req *http.Request) {
		var review authenticationv1.TokenReview
		answer(w, req, &review, func() {
			r.tokens++
			if u, ok := r.users[review.Spec.Token]; ok {
				review.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: u[0], Groups: u[1:]}}
			}
		})
	})
	mux.HandleFunc("POST /apis/authorization.k8s.io/v1/subjectaccessreviews", func(w http.ResponseWriter, req *http.Request) {
		var review authorizationv1.SubjectAccessReview
		answer(w, req, &review, func() {
			r.asked = append(r.asked, review.Spec)
			if attrs := review.Spec.NonResourceAttributes; attrs != nil && attrs.Verb == "get" {
				_, review.Status.Allowed = r.allow[review.Spec.User][attrs.Path]
			}
		})
	})
	apiServer := httptest.NewServer(mux)
	t.Cleanup(apiServer.Close)
	// JSON, which this fake speaks (client-go would otherwise send protobuf, as to a real one).
	r.client = kubernetes.NewForConfigOrDie(&rest.Config{Host: apiServer.URL, ContentConfig: rest.ContentConfig{ContentType: "application/json"}})
	return r
}

func (r *reviewer) user(token, name string, groups ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users[token] = append([]string{name}, groups...)
}

func (r *reviewer) grant(name, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.allow[name] == nil {
		r.allow[name] = map[string]struct{}{}
	}
	r.allow[name][path] = struct{}{}
}

func start(t *testing.T, cfg Config) string {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	cfg.Name = "metrics"
	cfg.Address = "127.0.0.1:0"
	addr, err := Start(ctx, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secret "+r.URL.Path)
	}))
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// insecure skips verification: these tests look at the certificate themselves.
var insecure = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := insecure.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOnlyAuthenticatedAndAuthorizedCallersAreServed(t *testing.T) {
	r := newReviewer(t)
	r.user("reader-token", "reader")
	r.user("stranger-token", "stranger")
	r.user("admin-token", "admin", "system:masters")
	r.grant("reader", "/metrics")
	base := "https://" + start(t, Config{Client: r.client})

	for _, tc := range []struct {
		name, token, path string
		code              int
	}{
		{"no token", "", "/metrics", http.StatusUnauthorized},
		{"a token the API server does not know", "forged", "/metrics", http.StatusUnauthorized},
		{"a known caller without the role", "stranger-token", "/metrics", http.StatusForbidden},
		{"a reader", "reader-token", "/metrics", http.StatusOK},
		{"a reader, another path", "reader-token", "/debug/pprof/", http.StatusForbidden},
		{"system:masters, without asking", "admin-token", "/debug/pprof/", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, base+tc.path, tc.token)
			if code != tc.code {
				t.Fatalf("GET %s = %d %q, want %d", tc.path, code, body, tc.code)
			}
			if served := strings.Contains(body, "secret"); served != (code == http.StatusOK) {
				t.Errorf("GET %s = %d with body %q: the handler ran %v", tc.path, code, body, served)
			}
		})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, spec := range r.asked {
		if spec.User == "admin" {
			t.Errorf("a SubjectAccessReview was sent for a member of system:masters: %+v", spec)
		}
		if spec.NonResourceAttributes == nil || spec.ResourceAttributes != nil {
			t.Errorf("the SubjectAccessReview is not about a non-resource URL: %+v", spec)
		}
	}
}

func writeCert(t *testing.T, dir, host string) (certFile, keyFile string, der []byte) {
	t.Helper()
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(host, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	// Written to new files and renamed over the old, as a Secret volume updates.
	for path, data := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(path+".new", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	block, _ := pem.Decode(certPEM)
	return certFile, keyFile, block.Bytes
}

func servedCertificate(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// A certificate given in files is served, and a renewed one is served without a restart.
func TestCertificateFilesAreReloaded(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, first := writeCert(t, dir, "first.example.com")
	addr := start(t, Config{Client: newReviewer(t).client, CertFile: certFile, KeyFile: keyFile})
	if got := servedCertificate(t, addr); string(got.Raw) != string(first) {
		t.Fatalf("served certificate for %v, want the one in %s", got.DNSNames, certFile)
	}
	_, _, second := writeCert(t, dir, "second.example.com")
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := servedCertificate(t, addr)
		if string(got.Raw) == string(second) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %v 30s after the files were renewed", got.DNSNames)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Without certificate files, a self-signed certificate for the loopback addresses is made.
func TestSelfSignedCertificateWhenNoneIsGiven(t *testing.T) {
	addr := start(t, Config{Client: newReviewer(t).client})
	cert := servedCertificate(t, addr)
	if err := cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("the generated certificate does not name 127.0.0.1: %v", err)
	}
	if err := cert.VerifyHostname("localhost"); err != nil {
		t.Errorf("the generated certificate does not name localhost: %v", err)
	}
}

func TestConfigurationErrors(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	h := http.NotFoundHandler()
	if _, err := Start(ctx, Config{Name: "metrics", Address: "127.0.0.1:0", CertFile: "x.crt", Client: newReviewer(t).client}, h); err == nil ||
		!strings.Contains(err.Error(), "certificate and its key") {
		t.Errorf("a certificate without a key: %v, want an error saying both are needed", err)
	}
	if _, err := Start(ctx, Config{Name: "metrics", Address: "127.0.0.1:0", CertFile: "/nonexistent.crt", KeyFile: "/nonexistent.key", Client: newReviewer(t).client}, h); err == nil {
		t.Error("missing certificate files: no error")
	}
	if _, err := Start(ctx, Config{Name: "metrics", Address: "256.0.0.1:0", Client: newReviewer(t).client}, h); err == nil ||
		!strings.Contains(err.Error(), "serving metrics on 256.0.0.1:0") {
		t.Errorf("an address that cannot be bound: %v, want an error naming it", err)
	}
}

// The API server's answers are cached for their TTL, a refusal too; then asked again.
func TestReviewsAreCached(t *testing.T) {
	r := newReviewer(t)
	r.user("reader-token", "reader")
	r.grant("reader", "/metrics")
	d := newDelegation(r.client)
	now := time.Now()
	d.now = func() time.Time { return now }
	h := d.wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "secret") }))
	serve := func(token, path string) int {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	counts := func() (tokens, accesses int) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.tokens, len(r.asked)
	}
	for range 3 {
		if code := serve("reader-token", "/metrics"); code != http.StatusOK {
			t.Fatalf("reader: %d", code)
		}
		if code := serve("reader-token", "/debug/pprof/"); code != http.StatusForbidden {
			t.Fatalf("reader on another path: %d", code)
		}
		if code := serve("forged", "/metrics"); code != http.StatusUnauthorized {
			t.Fatalf("forged token: %d", code)
		}
	}
	if tokens, accesses := counts(); tokens != 2 || accesses != 2 {
		t.Errorf("within the TTL: %d TokenReviews and %d SubjectAccessReviews, want 2 and 2 (one per token, one per path)", tokens, accesses)
	}
	now = now.Add(tokenReviewTTL)
	serve("reader-token", "/metrics")
	if tokens, accesses := counts(); tokens != 3 || accesses != 3 {
		t.Errorf("after the TTL: %d TokenReviews and %d SubjectAccessReviews, want 3 and 3", tokens, accesses)
	}
}

// When the API server refuses the reviews themselves (the controller lacks the RBAC), a caller
// is refused, the reason logged (authentication) or answered (authorization), nothing cached.
func TestRefusedReviews(t *testing.T) {
	r := newReviewer(t)
	r.user("reader-token", "reader")
	r.grant("reader", "/metrics")
	base := "https://" + start(t, Config{Client: r.client})
	r.mu.Lock()
	r.refuse = true
	r.mu.Unlock()
	if code, body := get(t, base+"/metrics", "reader-token"); code != http.StatusUnauthorized {
		t.Errorf("TokenReview refused: %d %q, want 401", code, body)
	}
	r.mu.Lock()
	r.refuse = false
	r.mu.Unlock()
	if code, _ := get(t, base+"/metrics", "reader-token"); code != http.StatusOK {
		t.Errorf("once the reviews are allowed: %d, want 200 (a refusal is not cached)", code)
	}

	d := newDelegation(r.client)
	user, err := d.authenticate(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if user != nil || err != nil {
		t.Errorf("no token: %v, %v; want nobody and no error", user, err)
	}
	r.mu.Lock()
	r.refuse = true
	r.mu.Unlock()
	req := httptest.NewRequest(http.MethodGet, "/other", nil)
	req.Header.Set("Authorization", "Bearer reader-token")
	w := httptest.NewRecorder()
	d.users.put(fmt.Sprintf("%x", sha256.Sum256([]byte("reader-token"))), &authenticationv1.UserInfo{Username: "reader"}, d.now())
	d.wrap(http.NotFoundHandler()).ServeHTTP(w, req)
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "reviews are forbidden") {
		t.Errorf("SubjectAccessReview refused: %d %q, want 500 naming the refusal", w.Code, w.Body.String())
	}
}

// The caches hold at most maxAnswers entries, whatever tokens callers send.
func TestAnswersAreBounded(t *testing.T) {
	var a answers[bool]
	a.ttl = time.Minute
	now := time.Now()
	for i := range 3 * maxAnswers {
		a.put(fmt.Sprint(i), true, now)
	}
	if n := len(a.entries); n > maxAnswers {
		t.Errorf("%d entries, want at most %d", n, maxAnswers)
	}
	if _, ok := a.get(fmt.Sprint(3*maxAnswers-1), now); !ok {
		t.Error("the newest answer is not cached")
	}
	if _, ok := a.get(fmt.Sprint(3*maxAnswers-1), now.Add(time.Minute)); ok {
		t.Error("an answer is served past its TTL")
	}
}
