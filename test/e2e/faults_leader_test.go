//go:build e2e

package e2e

// Scenario 4 of "Proven under faults": a leader cut off from the API server while it keeps
// running, and a leader drained while its API server is slow.
//
// Each replica of the controller reaches the API server through a TCP proxy of its own that
// this file runs (proxyTCP): the test cuts it (the leader's connections are closed, new ones are
// refused as by a dead server or accepted and never forwarded as in a network partition, or
// existing ones just stop carrying bytes), restores it, or delays every chunk it forwards. TLS
// stays end to end, between the controller and the API server; each replica authenticates as
// a ServiceAccount of its own, so the audit log tells the replicas apart (the binary's user
// agent is fixed, and the same for every replica).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"example.com/sample-controller/internal/auditlog"
)

// ---- the proxy ----

// proxyMode is what a proxyTCP does with connections.
type proxyMode int

const (
	// proxyPass forwards both ways (after the latency, if any).
	proxyPass proxyMode = iota
	// proxyRefuse is a dead server: open connections are reset, new ones refused (the
	// listening socket is closed; restore opens it again on the same port).
	proxyRefuse
	// proxyBlackhole is a partition: open connections are reset, new ones are accepted and
	// never forwarded (the client's handshake goes unanswered until it gives up).
	proxyBlackhole
	// proxyStall is a partition the client is not told of: open connections stay open and stop
	// carrying bytes either way (what was sent meanwhile is delivered on restore, as TCP would
	// after a partition heals), new ones are accepted and never forwarded.
	proxyStall
)

func (m proxyMode) String() string {
	return [...]string{"pass", "refuse", "blackhole", "stall"}[m]
}

// proxyLatency delays every chunk forwarded in one direction by base plus a random part of
// jitter. Chunks keep their order.
type proxyLatency struct{ base, jitter time.Duration }

func (l proxyLatency) pick() time.Duration {
	if l.jitter <= 0 {
		return l.base
	}
	return l.base + rand.N(l.jitter)
}

// proxyTCP forwards TCP connections from a port of its own on 127.0.0.1 to target.
type proxyTCP struct {
	t      *testing.T
	name   string
	addr   string // host:port it listens on, kept across a refusal
	target string

	mu      sync.Mutex
	ln      net.Listener // nil while refusing
	mode    proxyMode
	resumed chan struct{} // closed by restore; a new one at each cut
	latency [2]proxyLatency
	conns   map[*proxyConn]struct{}
	held    []net.Conn // accepted while cut, never forwarded; closed on restore
	accepts int        // connections accepted and forwarded
	closed  bool

	upstream atomic.Int64 // bytes forwarded from the client to the target
}

const (
	proxyUp   = 0 // client to target
	proxyDown = 1 // target to client
)

// proxyStart listens on 127.0.0.1:0 and forwards every connection to target until the test ends.
func proxyStart(t *testing.T, name, target string) *proxyTCP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxyTCP{t: t, name: name, addr: ln.Addr().String(), target: target, ln: ln,
		resumed: make(chan struct{}), conns: map[*proxyConn]struct{}{}}
	close(p.resumed)
	go p.serve(ln)
	t.Cleanup(p.close)
	return p
}

func (p *proxyTCP) serve(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return // closed: a refusal, or the end of the test
		}
		p.mu.Lock()
		switch {
		case p.closed:
			client.Close()
		case p.mode != proxyPass:
			p.held = append(p.held, client) // a blackhole: never read, never answered
		default:
			p.accepts++
			go p.forward(client)
		}
		p.mu.Unlock()
	}
}

func (p *proxyTCP) forward(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	c := &proxyConn{p: p, client: client, server: server, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.mode != proxyPass {
		// Cut while dialling: this one is cut too.
		if !p.closed && p.mode != proxyRefuse {
			p.held = append(p.held, client)
		} else {
			client.Close()
		}
		p.mu.Unlock()
		server.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	go c.pump(client, server, proxyUp)
	go c.pump(server, client, proxyDown)
}

// cut applies mode to the open connections and to every new one until restore. When it returns,
// no byte is being forwarded, and none will be until restore.
func (p *proxyTCP) cut(mode proxyMode) {
	p.t.Helper()
	if mode == proxyPass {
		p.t.Fatal("proxyTCP.cut(proxyPass): use restore")
	}
	p.mu.Lock()
	if p.mode == proxyPass {
		p.resumed = make(chan struct{})
	}
	p.mode = mode
	var ln net.Listener
	if mode == proxyRefuse {
		ln, p.ln = p.ln, nil
	}
	conns := slices.Collect(maps.Keys(p.conns))
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		if mode != proxyStall {
			c.reset()
		}
		// A forward under way holds c.mu: once it is released, every later one sees the cut.
		c.mu.Lock()
		c.mu.Unlock() //nolint:staticcheck // an empty critical section: a barrier
	}
}

// restore forwards again: a refused port listens again, stalled connections carry on, and the
// connections accepted while cut are closed (their clients gave up on them long ago).
func (p *proxyTCP) restore() {
	p.t.Helper()
	p.mu.Lock()
	if p.mode == proxyPass {
		p.mu.Unlock()
		return
	}
	if p.ln == nil {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			p.mu.Unlock()
			p.t.Fatalf("proxy %s: listening again on %s: %v", p.name, p.addr, err)
		}
		p.ln = ln
		go p.serve(ln)
	}
	p.mode = proxyPass
	close(p.resumed)
	held := p.held
	p.held = nil
	p.mu.Unlock()
	for _, c := range held {
		c.Close()
	}
}

// setLatency delays what is forwarded from now on: up is client to target, down the way back.
func (p *proxyTCP) setLatency(up, down proxyLatency) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latency = [2]proxyLatency{up, down}
}

// upstreamBytes is how many bytes the proxy has forwarded from its clients to the target.
func (p *proxyTCP) upstreamBytes() int64 { return p.upstream.Load() }

func (p *proxyTCP) state() (proxyMode, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode, p.resumed
}

func (p *proxyTCP) delay(dir int) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latency[dir].pick()
}

func (p *proxyTCP) close() {
	p.mu.Lock()
	p.closed = true
	ln := p.ln
	conns := slices.Collect(maps.Keys(p.conns))
	held := p.held
	p.held = nil
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.close()
	}
	for _, c := range held {
		c.Close()
	}
}

// proxyConn is one forwarded connection.
type proxyConn struct {
	p              *proxyTCP
	client, server net.Conn
	mu             sync.Mutex // held while a chunk is written; cut takes it as a barrier
	closed         bool
	done           chan struct{}
	once           sync.Once
}

type proxyChunk struct {
	data []byte
	due  time.Time
}

// pump forwards from one side to the other: a reader queues chunks with the time each is due,
// a writer (this goroutine) writes each when due and while the proxy lets bytes through. The
// queue is long enough never to fill in these tests: latency delays every chunk by the same
// amount, it does not limit the bandwidth (a full queue would add waiting to the latency).
func (c *proxyConn) pump(from, to net.Conn, dir int) {
	chunks := make(chan proxyChunk, 1<<14)
	go func() {
		defer close(chunks)
		var last time.Time
		buf := make([]byte, 32<<10)
		for {
			n, err := from.Read(buf)
			if n > 0 {
				due := time.Now().Add(c.p.delay(dir))
				if due.Before(last) {
					due = last // in order, whatever the jitter
				}
				last = due
				select {
				case chunks <- proxyChunk{slices.Clone(buf[:n]), due}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer c.close()
	for chunk := range chunks {
		if !c.deliver(chunk, to, dir) {
			return
		}
	}
}

func (c *proxyConn) deliver(chunk proxyChunk, to net.Conn, dir int) bool {
	if wait := time.Until(chunk.due); wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-c.done:
			timer.Stop()
			return false
		}
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return false
		}
		mode, resumed := c.p.state()
		if mode == proxyPass {
			_, err := to.Write(chunk.data)
			if err == nil && dir == proxyUp {
				c.p.upstream.Add(int64(len(chunk.data)))
			}
			c.mu.Unlock()
			return err == nil
		}
		c.mu.Unlock()
		select { // stalled: wait for restore
		case <-resumed:
		case <-c.done:
			return false
		}
	}
}

// reset closes the connection with an RST to the client, as a dead peer's kernel would answer.
func (c *proxyConn) reset() {
	if tcp, ok := c.client.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	c.close()
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.server.Close()
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// ---- replicas behind proxies, each its own ServiceAccount ----

// faultLeaderReplica is one replica of the controller, reaching the API server through its
// own proxy, as ServiceAccount name.
type faultLeaderReplica struct {
	name       string
	user       string // its name in the audit log
	proxy      *proxyTCP
	kubeconfig string
	*controllerProcess
}

// faultLeaderReplicas makes a ServiceAccount per name in ns, bound to the shipped ClusterRole's
// rules (in ns) and the shipped leader-election Role, a proxy per replica to the API server, and
// a kubeconfig per replica whose server is its proxy. Nothing is started.
func faultLeaderReplicas(t *testing.T, ns string, names ...string) []*faultLeaderReplica {
	t.Helper()
	ctx := context.Background()
	rbac := kubeClient.RbacV1()
	var clusterRole rbacv1.ClusterRole
	readManifest(t, "artifacts/deploy/clusterrole.yaml", &clusterRole)
	var leaseRole rbacv1.Role
	readManifest(t, "artifacts/deploy/base/leader-election-role.yaml", &leaseRole)
	var rules []rbacv1.PolicyRule
	for _, rule := range clusterRole.Rules {
		if !isReviewRule(rule) { // cluster-scoped, for the secure metrics server, which is off here
			rules = append(rules, rule)
		}
	}
	var subjects []rbacv1.Subject
	for _, name := range names {
		if _, err := kubeClient.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: name, Namespace: ns})
	}
	for role, rules := range map[string][]rbacv1.PolicyRule{"controller": rules, "leases": leaseRole.Rules} {
		if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: role}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role},
			Subjects:   subjects,
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	admin, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cluster := admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	server, err := url.Parse(cluster.Server)
	if err != nil {
		t.Fatal(err)
	}
	var replicas []*faultLeaderReplica
	for _, name := range names {
		proxy := proxyStart(t, name, server.Host)
		c := cluster.DeepCopy()
		c.Server = "https://" + proxy.addr
		// The API server's certificate is checked against the name the admin kubeconfig dials, not
		// the proxy's address. Both are 127.0.0.1 on the local cluster (its certificate's SANs
		// include it); tls-server-name keeps the check right where they differ.
		c.TLSServerName = server.Hostname()
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["local"] = c
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: serviceAccountToken(t, ns, name)}
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "local", AuthInfo: name}
		cfg.CurrentContext = name
		path := filepath.Join(t.TempDir(), name+".kubeconfig")
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, &faultLeaderReplica{name: name, user: "system:serviceaccount:" + ns + ":" + name,
			proxy: proxy, kubeconfig: path})
	}
	return replicas
}

// start runs the controller binary as this replica, with leader election on a Lease in ns.
func (r *faultLeaderReplica) start(t *testing.T, ns string, args ...string) {
	t.Helper()
	r.controllerProcess = startProcess(t, exec.Command(controllerBin, append([]string{"--kubeconfig=" + r.kubeconfig,
		"--namespace=" + ns, "--leader-elect", "--leader-elect-namespace=" + ns}, args...)...))
}

func (r *faultLeaderReplica) logs(s string) func() (bool, string) {
	return func() (bool, string) { return strings.Contains(r.Log(), s), r.LogTail(3) }
}

// faultLeaderStartPair starts a, waits for it to lead, then b, and waits for it to stand by.
func faultLeaderStartPair(t *testing.T, ns string, a, b *faultLeaderReplica, args ...string) {
	t.Helper()
	a.start(t, ns, args...)
	eventually(t, a.controllerProcess, 60*time.Second, a.name+" to lead", a.logs("Became the leader"))
	b.start(t, ns, args...)
	eventually(t, b.controllerProcess, 60*time.Second, b.name+" to stand by", b.logs("standing by"))
	if holder := leaseHolder(t, ns, "sample-controller"); holder == "" || !strings.Contains(a.Log(), holder) {
		t.Fatalf("the Lease is held by %q, not by %s", holder, a.name)
	}
}

// ---- what the logs and the audit log say, with times ----

var faultLeaderKlogHeader = regexp.MustCompile(`^[IWEF](\d{4} \d{2}:\d{2}:\d{2}\.\d{6}) `)

// faultLeaderLogTime is the time of a klog text line (local time; the year is this one).
func faultLeaderLogTime(line string) (time.Time, bool) {
	m := faultLeaderKlogHeader.FindStringSubmatch(line)
	if m == nil {
		return time.Time{}, false
	}
	ts, err := time.ParseInLocation("0102 15:04:05.000000", m[1], time.Local)
	if err != nil {
		return time.Time{}, false
	}
	return ts.AddDate(time.Now().Year(), 0, 0), true
}

// faultLeaderLogLine finds the first line of log containing s and returns its time. Without
// one, the test fails (and carries on: the other checks still say what they see).
func faultLeaderLogLine(t *testing.T, log, s string) (time.Time, bool) {
	t.Helper()
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, s) {
			if ts, ok := faultLeaderLogTime(line); ok {
				return ts, true
			}
		}
	}
	t.Errorf("no line with %q in the log", s)
	return time.Time{}, false
}

// faultLeaderAuditEvent is an audit event with the API server's timestamps.
type faultLeaderAuditEvent struct {
	auditlog.Event
	Received  time.Time `json:"requestReceivedTimestamp"`
	Completed time.Time `json:"stageTimestamp"`
}

func (e faultLeaderAuditEvent) String() string {
	return fmt.Sprintf("%s by %s, %s..%s", e.Event.String(), e.User.Username,
		e.Received.Local().Format("15:04:05.000000"), e.Completed.Local().Format("15:04:05.000000"))
}

func (e faultLeaderAuditEvent) isWrite() bool {
	return len(writesOf([]auditlog.Event{e.Event})) == 1
}

// isFooWork: a write of what a Foo's sync writes (its Deployment, its status, Events about it).
func (e faultLeaderAuditEvent) isFooWork() bool {
	r := e.ObjectRef
	return e.isWrite() && (r.Resource == "deployments" || r.Resource == "events" || (r.Resource == "foos" && r.Subresource == "status"))
}

// faultLeaderAudit returns the completed requests in ns after mark made by the given users.
func faultLeaderAudit(t *testing.T, mark int64, ns string, users ...string) []faultLeaderAuditEvent {
	t.Helper()
	var out []faultLeaderAuditEvent
	forEachAuditLineSince(t, mark, func(line []byte) {
		var e faultLeaderAuditEvent
		if err := json.Unmarshal(line, &e); err != nil {
			return // a line still being written
		}
		if e.Stage == "ResponseComplete" && e.ObjectRef != nil && e.ObjectRef.Namespace == ns && slices.Contains(users, e.User.Username) {
			out = append(out, e)
		}
	})
	return out
}

// ---- Foos and the end state ----

func faultLeaderCreateFoos(t *testing.T, ns, prefix string, n int) []string {
	t.Helper()
	var names []string
	for i := range n {
		name := fmt.Sprintf("%s-%02d", prefix, i)
		createFoo(t, newFoo(ns, name, name, 1))
		names = append(names, name)
	}
	return names
}

// faultLeaderConverged says how many of the named Foos have converged.
func faultLeaderConverged(t *testing.T, ns string, names []string) (int, string) {
	t.Helper()
	list, err := sampleClient.SamplecontrollerV1().Foos(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return 0, err.Error()
	}
	n, last := 0, ""
	for _, foo := range list.Items {
		if !slices.Contains(names, foo.Name) {
			continue
		}
		if ok, state := fooConverged(&foo); ok {
			n++
		} else {
			last = foo.Name + ": " + state
		}
	}
	return n, fmt.Sprintf("%d of %d converged; e.g. %s", n, len(names), last)
}

// faultLeaderEndState waits for the state every fault test must end in: every Foo in ns
// converged (status.observedGeneration == generation, Ready True with every replica available),
// exactly one Deployment per Foo, named as its spec says and controlled by that Foo's UID, and no
// Deployment for a Foo that no longer exists.
func faultLeaderEndState(t *testing.T, p *controllerProcess, ns string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	eventually(t, p, timeout, "every Foo converged with exactly one Deployment of its own, and no other Deployment", func() (bool, string) {
		foos, err := sampleClient.SamplecontrollerV1().Foos(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		deployments, err := kubeClient.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		byOwner := map[types.UID][]string{}
		for _, d := range deployments.Items {
			owner := metav1.GetControllerOf(&d)
			if owner == nil {
				return false, "Deployment " + d.Name + " has no controller"
			}
			byOwner[owner.UID] = append(byOwner[owner.UID], d.Name)
		}
		for _, foo := range foos.Items {
			if ok, state := fooConverged(&foo); !ok {
				return false, "Foo " + foo.Name + " has not converged: " + state
			}
			if got := byOwner[foo.UID]; len(got) != 1 || got[0] != foo.Spec.Deployment.Name {
				return false, fmt.Sprintf("Foo %s (%s) controls the Deployments %v, want exactly [%s]", foo.Name, foo.UID, got, foo.Spec.Deployment.Name)
			}
			delete(byOwner, foo.UID)
		}
		if len(byOwner) > 0 {
			return false, fmt.Sprintf("Deployments of Foos that no longer exist (by owner UID): %v", byOwner)
		}
		return true, ""
	})
}

// ---- the proxy itself ----

// The proxy does what the fault tests rely on, against an echo server: it forwards both ways;
// latency delays each direction; a refusal resets open connections and refuses new ones; a
// blackhole resets open connections and accepts new ones without ever forwarding them; a stall
// keeps connections open without forwarding, and restore delivers what was held.
func TestFaultLeaderProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						_, _ = c.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	p := proxyStart(t, "echo", echo.Addr().String())
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", p.addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dialling the proxy: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// roundTrip writes a ping and waits up to wait for its echo.
	roundTrip := func(c net.Conn, wait time.Duration) (time.Duration, error) {
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			return 0, err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 4)
		_, err := c.Read(buf)
		if err == nil && string(buf) != "ping" {
			err = fmt.Errorf("echo %q", buf)
		}
		return time.Since(start), err
	}
	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}

	c := dial()
	if _, err := roundTrip(c, 2*time.Second); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.setLatency(proxyLatency{base: 100 * time.Millisecond}, proxyLatency{base: 150 * time.Millisecond, jitter: 50 * time.Millisecond})
	if rtt, err := roundTrip(c, 2*time.Second); err != nil || rtt < 250*time.Millisecond || rtt > 1500*time.Millisecond {
		t.Errorf("round trip with 100ms up and 150-200ms down: %s, %v", rtt, err)
	}
	p.setLatency(proxyLatency{}, proxyLatency{})

	p.cut(proxyRefuse)
	if _, err := roundTrip(c, 2*time.Second); err == nil || isTimeout(err) {
		t.Errorf("an open connection after a refusal: %v, want it reset", err)
	}
	if _, err := net.DialTimeout("tcp", p.addr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dialling a refusing proxy: %v, want connection refused", err)
	}
	p.restore()
	c = dial()
	if _, err := roundTrip(c, 2*time.Second); err != nil {
		t.Fatalf("through the restored proxy: %v", err)
	}

	before := p.upstreamBytes()
	p.cut(proxyBlackhole)
	if _, err := roundTrip(c, 2*time.Second); err == nil || isTimeout(err) {
		t.Errorf("an open connection after a blackhole: %v, want it reset", err)
	}
	hole := dial() // accepted...
	if _, err := roundTrip(hole, 500*time.Millisecond); !isTimeout(err) {
		t.Errorf("through a blackhole: %v, want no answer", err) // ...and never answered
	}
	if got := p.upstreamBytes(); got != before {
		t.Errorf("the blackholed proxy forwarded %d bytes", got-before)
	}
	p.restore()

	c = dial()
	if _, err := roundTrip(c, 2*time.Second); err != nil {
		t.Fatalf("through the restored proxy: %v", err)
	}
	before = p.upstreamBytes()
	p.cut(proxyStall)
	if _, err := roundTrip(c, 500*time.Millisecond); !isTimeout(err) {
		t.Errorf("an open connection through a stall: %v, want no answer", err)
	}
	if got := p.upstreamBytes(); got != before {
		t.Errorf("the stalled proxy forwarded %d bytes", got-before)
	}
	p.restore()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	if _, err := c.Read(buf); err != nil || string(buf) != "ping" {
		t.Errorf("after a stall, the held ping came back as %q, %v", buf, err)
	}
}

// ---- the tests ----

// Two replicas; the leader is cut off from the API server while it keeps running. It must stop
// leading and exit with status 1 within the renew deadline (plus slack), before the standby
// takes over once the Lease has expired; Foos created, changed and deleted after the cut
// converge through the new leader; and the API server never sees a write of the old leader after
// the new leader's first write.
//
// Two partitions: "blackhole" resets the leader's connections and swallows new ones, and is
// healed once the standby leads (a leader that had not stopped would then reach the API server);
// "stall" leaves its connections open but carrying nothing (its requests hang rather than
// fail), and is never healed (a heal would deliver, late, what the leader sent before it exited).
func TestFaultLeaderCutOff(t *testing.T) {
	ensureCRD(t)
	waitForOwnerReferenceEnforcement(t) // Deployments owned by a Foo are admitted for a ServiceAccount
	t.Run("blackhole", func(t *testing.T) { faultLeaderCutOff(t, proxyBlackhole, true) })
	t.Run("stall", func(t *testing.T) { faultLeaderCutOff(t, proxyStall, false) })
}

func faultLeaderCutOff(t *testing.T, mode proxyMode, heal bool) {
	ns := newNamespace(t)
	const (
		leaseDuration = 6 * time.Second
		renewDeadline = 4 * time.Second
		retryPeriod   = time.Second
		slack         = 5 * time.Second // a loaded 2-core machine and a -race binary
	)
	mark := auditMark(t)
	replicas := faultLeaderReplicas(t, ns, "replica-a", "replica-b")
	old, next := replicas[0], replicas[1]
	faultLeaderStartPair(t, ns, old, next, "-v=2", "--leader-elect-lease-duration="+leaseDuration.String(),
		"--leader-elect-renew-deadline="+renewDeadline.String(), "--leader-elect-retry-period="+retryPeriod.String())

	before := faultLeaderCreateFoos(t, ns, "before", 20)
	eventually(t, old.controllerProcess, 90*time.Second, "the 20 Foos to converge", func() (bool, string) {
		n, state := faultLeaderConverged(t, ns, before)
		return n == len(before), state
	})

	// The cut: a partition between the leader and the API server.
	old.proxy.cut(mode)
	cut := time.Now()
	forwardedAtCut := old.proxy.upstreamBytes()
	t.Logf("cut %s's proxy (%s) at %s", old.name, mode, cut.Format("15:04:05.000"))

	// Changes only the next leader can carry out: new Foos, changed ones, deleted ones.
	after := faultLeaderCreateFoos(t, ns, "after", 5)
	for _, name := range before[:3] {
		mustKubectl(t, "patch", "foo", name, "-n", ns, "--type=merge", "-p", `{"spec":{"replicas":2}}`)
	}
	for _, name := range before[3:5] {
		if err := sampleClient.SamplecontrollerV1().Foos(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, next.controllerProcess, leaseDuration+retryPeriod*44/10+slack+30*time.Second, "the standby to take over", next.logs("Became the leader"))
	takeover := time.Since(cut)
	if heal {
		// From here on, the old leader's proxy forwards again: a leader that had not stopped
		// would now reach the API server.
		old.proxy.restore()
	}

	var exited time.Duration // cut to exit, by the old leader's last log line
	select {
	case <-old.Exited():
		exited = time.Since(cut)
		if last, ok := faultLeaderLogLine(t, old.Log(), "Leader election lost; exiting"); ok {
			exited = last.Sub(cut)
		}
	case <-time.After(time.Until(cut.Add(30 * time.Second))):
		t.Errorf("the cut-off leader still runs %s after the cut, and the standby leads since %s after it:\n%s",
			time.Since(cut).Round(100*time.Millisecond), takeover.Round(100*time.Millisecond), old.LogTail(10))
	}
	if exited != 0 {
		var exitErr *exec.ExitError
		if err := old.Wait(); !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
			t.Errorf("the cut-off leader exited with %v, want status 1", err)
		}
		if !strings.Contains(old.Log(), "Lost the Lease while still running") {
			t.Errorf("the cut-off leader's log does not say it lost the Lease:\n%s", old.LogTail(10))
		}
		if strings.Contains(old.Log(), "Released the Lease") {
			t.Errorf("the cut-off leader claims to have released the Lease:\n%s", old.LogTail(10))
		}
		if max := renewDeadline + retryPeriod + slack; exited > max {
			t.Errorf("the cut-off leader exited %s after the cut, want within the renew deadline and a retry period (+%s slack): %s", exited, slack, max)
		}
		// Both logs are written on this machine's clock.
		if led, ok := faultLeaderLogLine(t, next.Log(), "Became the leader"); ok && !led.After(cut.Add(exited)) {
			t.Errorf("the standby led at %s, before the old leader exited at %s", led.Format("15:04:05.000000"), cut.Add(exited).Format("15:04:05.000000"))
		}
	}
	if min := leaseDuration - 2*retryPeriod; takeover < min {
		t.Errorf("the standby took over %s after the cut, want no sooner than the Lease can expire (%s)", takeover, min)
	}
	// The standby tries every retry period plus up to 120% of it (client-go's JitterFactor): it
	// sees the last renewal up to 2.2 retry periods late, and the expiry as late again.
	if max := leaseDuration + retryPeriod*44/10 + slack; takeover > max {
		t.Errorf("the standby took over %s after the cut, want within the lease duration and two jittered retry periods (+%s slack): %s", takeover, slack, max)
	}

	eventually(t, next.controllerProcess, 60*time.Second, "a Foo created after the cut to converge", func() (bool, string) {
		n, state := faultLeaderConverged(t, ns, after)
		return n > 0, state
	})
	firstConverged := time.Since(cut)
	faultLeaderEndState(t, next.controllerProcess, ns, 90*time.Second)
	t.Logf("after the cut: the old leader exited after %s, the standby led after %s, the first new Foo converged after %s, all after %s",
		exited.Round(10*time.Millisecond), takeover.Round(100*time.Millisecond), firstConverged.Round(100*time.Millisecond),
		time.Since(cut).Round(100*time.Millisecond))

	// The proxy: not a byte from the old leader reached the API server after the cut, neither
	// while it was cut nor after it was healed.
	if got := old.proxy.upstreamBytes() - forwardedAtCut; got != 0 {
		t.Errorf("the old leader's proxy forwarded %d bytes after the cut", got)
	}
	// The API server: the old leader's last write came before the new leader's first.
	events := faultLeaderAudit(t, mark, ns, old.user, next.user)
	var oldLast, newFirst *faultLeaderAuditEvent
	for i, e := range events {
		switch {
		case !e.isWrite():
		case e.User.Username == old.user:
			if oldLast == nil || e.Completed.After(oldLast.Completed) {
				oldLast = &events[i]
			}
			if e.Received.After(cut.Add(time.Second)) {
				t.Errorf("a write of the old leader reached the API server after the cut: %s", e)
			}
		case e.isFooWork():
			if newFirst == nil || e.Received.Before(newFirst.Received) {
				newFirst = &events[i]
			}
			if e.Received.Before(cut) {
				t.Errorf("the standby wrote while the leader still worked: %s", e)
			}
		}
	}
	if oldLast == nil || newFirst == nil {
		t.Fatalf("the audit log lacks writes: old leader's last %v, new leader's first %v", oldLast, newFirst)
	}
	t.Logf("the old leader's last write: %s; the new leader's first: %s", oldLast, newFirst)
	if !oldLast.Completed.Before(newFirst.Received) {
		t.Errorf("the old leader's last write (%s) does not precede the new leader's first (%s)", oldLast, newFirst)
	}
	// What changed after the cut was done by the new leader.
	for _, name := range append(slices.Clone(after), before[:3]...) {
		if !slices.ContainsFunc(events, func(e faultLeaderAuditEvent) bool {
			return e.User.Username == next.user && e.ObjectRef.Resource == "deployments" && e.ObjectRef.Name == name && e.isWrite()
		}) {
			t.Errorf("the new leader never wrote the Deployment of Foo %s", name)
		}
	}
}

// The leader is stopped with SIGTERM while its API server is slow (300-800ms a round trip, by
// its proxy) and it converges a batch of Foos: it finishes the syncs under way, writes nothing
// more, then releases the Lease and exits 0 within the Deployment's grace period (45s); the
// standby takes over at once (the Lease was released: no waiting for it to expire) and every
// Foo converges, each with one Deployment of its own.
func TestFaultLeaderSlowAPIDuringDrain(t *testing.T) {
	ensureCRD(t)
	waitForOwnerReferenceEnforcement(t)
	ns := newNamespace(t)
	const (
		leaseDuration = 15 * time.Second // the defaults: a release must beat them by far
		retryPeriod   = 2 * time.Second
		gracePeriod   = 45 * time.Second // terminationGracePeriodSeconds, artifacts/deploy/base/deployment.yaml
	)
	up, down := proxyLatency{base: 150 * time.Millisecond, jitter: 250 * time.Millisecond}, proxyLatency{base: 150 * time.Millisecond, jitter: 250 * time.Millisecond}
	mark := auditMark(t)
	replicas := faultLeaderReplicas(t, ns, "replica-a", "replica-b")
	a, b := replicas[0], replicas[1]
	// -v=4: every sync logs its start and its end.
	faultLeaderStartPair(t, ns, a, b, "-v=4")

	a.proxy.setLatency(up, down)
	// The latency is real: a request through a's proxy takes at least one slow round trip.
	cfg, err := clientcmd.BuildConfigFromFlags("", a.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := kubernetes.NewForConfigOrDie(cfg).Discovery().ServerVersion(); err != nil {
		t.Fatal(err)
	}
	rtt := time.Since(start)
	if min := up.base + down.base; rtt < min {
		t.Fatalf("GET /version through the slow proxy took %s, want at least %s", rtt, min)
	}

	names := faultLeaderCreateFoos(t, ns, "slow", 24)
	eventually(t, a.controllerProcess, 60*time.Second, "the leader to be half-way through the batch", func() (bool, string) {
		list, err := kubeClient.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(list.Items) >= 6, fmt.Sprintf("%d Deployments", len(list.Items))
	})
	if n, _ := faultLeaderConverged(t, ns, names); n == len(names) {
		t.Fatalf("the batch converged before the SIGTERM: nothing to drain")
	}
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sigterm := time.Now()
	select {
	case <-a.Exited():
	case <-time.After(gracePeriod + 15*time.Second):
		t.Fatalf("the leader still runs %s after SIGTERM:\n%s", time.Since(sigterm).Round(time.Second), a.LogTail(10))
	}
	drain := time.Since(sigterm)
	if err := a.Wait(); err != nil {
		t.Errorf("the leader exited with %v after SIGTERM, want status 0", err)
	}
	if drain > gracePeriod {
		t.Errorf("the leader took %s to exit after SIGTERM, want within the grace period (%s)", drain, gracePeriod)
	}
	log := a.Log()
	shutdown, ok1 := faultLeaderLogLine(t, log, "Shutting down: finishing in-flight keys")
	finished, ok2 := faultLeaderLogLine(t, log, "Workers finished")
	released, ok3 := faultLeaderLogLine(t, log, "Released the Lease")
	if ok1 && ok2 && ok3 && (finished.Before(shutdown) || released.Before(finished)) {
		t.Errorf("the leader did not drain, then release:\n%s", a.LogTail(10))
	}
	if strings.Contains(log, "Could not release the Lease") {
		t.Errorf("the leader could not release the Lease:\n%s", a.LogTail(10))
	}

	// The syncs under way at the SIGTERM: each finished (its end is logged).
	started := map[string]time.Time{}
	var inFlight []string
	var longest time.Duration
	for line := range strings.SplitSeq(log, "\n") {
		isStart, isEnd := strings.Contains(line, `"Started syncing Foo"`), strings.Contains(line, `"Finished syncing Foo"`)
		if !isStart && !isEnd {
			continue
		}
		ts, ok := faultLeaderLogTime(line)
		_, key, found := strings.Cut(line, ` foo="`)
		if !ok || !found {
			t.Fatalf("cannot read the sync line %q", line)
		}
		key, _, _ = strings.Cut(key, `"`)
		if isStart {
			started[key] = ts
			continue
		}
		if from, ok := started[key]; ok && from.Before(sigterm) && ts.After(sigterm) {
			inFlight = append(inFlight, key)
			longest = max(longest, ts.Sub(sigterm))
		}
		delete(started, key)
	}
	if len(started) > 0 {
		t.Errorf("syncs the leader started and never finished: %v", slices.Collect(maps.Keys(started)))
	}
	if len(inFlight) == 0 {
		t.Errorf("no sync was under way at the SIGTERM: the drain was not exercised")
	}

	eventually(t, b.controllerProcess, leaseDuration+10*time.Second, "the standby to take over", b.logs("Became the leader"))
	faultLeaderEndState(t, b.controllerProcess, ns, 90*time.Second)

	// The API server: everything the old leader's syncs wrote came before its release, and the
	// new leader wrote nothing before that release. Its clock, not the logs': the old leader logs
	// the release a slow round trip after the API server took it, and the standby may lead by then.
	events := faultLeaderAudit(t, mark, ns, a.user, b.user)
	var release, acquire *faultLeaderAuditEvent
	for i, e := range events {
		if e.ObjectRef.Resource == "leases" && e.Verb == "update" {
			switch {
			case e.User.Username == a.user:
				release = &events[i] // the last one
			case acquire == nil:
				acquire = &events[i] // the first one
			}
		}
	}
	if release == nil || acquire == nil {
		t.Fatalf("the audit log lacks the Lease's release (%v) or its acquisition (%v)", release, acquire)
	}
	handover := acquire.Received.Sub(release.Completed)
	// The standby tries every retry period plus up to 120% of it (client-go's JitterFactor), and a
	// released Lease is free at once: at most 4.4s, with the default retry period of 2s.
	if max := retryPeriod*22/10 + 3*time.Second; handover > max || handover < 0 {
		t.Errorf("the standby acquired the Lease %s after the release, want within %s (the lease duration is %s): %s, then %s",
			handover, max, leaseDuration, release, acquire)
	}
	t.Logf("slow API (GET /version %s through the proxy): %d syncs under way at SIGTERM, the last finished %s after it; "+
		"SIGTERM to workers finished %s, to the Lease released (logged) %s, to exit %s; release to the standby's acquisition %s (API server's clock)",
		rtt.Round(time.Millisecond), len(inFlight), longest.Round(time.Millisecond), finished.Sub(sigterm).Round(time.Millisecond),
		released.Sub(sigterm).Round(time.Millisecond), drain.Round(time.Millisecond), handover.Round(time.Millisecond))
	for _, e := range events {
		switch {
		case e.User.Username == a.user && e.isFooWork() && e.ObjectRef.Resource == "events":
			// Events are sent asynchronously, by the broadcaster, until Run returns; the Events of
			// the syncs the drain finished may still be on their way when the Lease is released.
			// They change no object the new leader writes (best effort, see Controller.Run).
			if !e.Received.Before(release.Completed) {
				t.Logf("the old leader's Event arrived after it released the Lease (%s): %s", release, e)
			}
		case e.User.Username == a.user && e.isFooWork() && e.Completed.After(release.Received):
			t.Errorf("the old leader wrote after it released the Lease (%s): %s", release, e)
		case e.User.Username == b.user && e.isWrite() && e.Received.Before(release.Completed):
			t.Errorf("the new leader wrote before the old one released the Lease (%s): %s", release, e)
		}
	}
	if !slices.ContainsFunc(events, func(e faultLeaderAuditEvent) bool { return e.User.Username == b.user && e.isFooWork() }) {
		t.Errorf("the new leader wrote nothing for the Foos")
	}
}
