package process

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The lines the controller logs (klog's text format) when its two servers start.
const controllerLog = `I1127 21:25:03.101010   4242 main.go:120] "Starting" version="v0.0.0"
I1127 21:25:03.123456   4242 httpserver.go:42] "Serving" server="metrics" address="127.0.0.1:40123"
I1127 21:25:03.123789   4242 httpserver.go:42] "Serving" server="probes" address="[::1]:40124"
`

func TestServedAddress(t *testing.T) {
	for server, want := range map[string]string{"metrics": "127.0.0.1:40123", "probes": "[::1]:40124"} {
		if got, ok := ServedAddress(controllerLog, server); !ok || got != want {
			t.Errorf("ServedAddress(%s) = %q, %v; want %q", server, got, ok, want)
		}
	}
	if got, ok := ServedAddress(controllerLog, "pprof"); ok {
		t.Errorf("ServedAddress(pprof) = %q, want none", got)
	}
	if got, ok := ServedAddress(`"Serving" server="metricsx" address="1.2.3.4:5"`, "metrics"); ok {
		t.Errorf("ServedAddress matched another server's name: %q", got)
	}
}

// start runs a shell script as the process, its output in a log file of the test's.
func start(t *testing.T, script string) *Process {
	t.Helper()
	log, err := os.Create(filepath.Join(t.TempDir(), "process.log"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(exec.Command("sh", "-c", script), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func waitForLine(t *testing.T, p *Process, line string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.Log(), line+"\n"); {
		if time.Now().After(deadline) {
			t.Fatalf("the process did not log %q: %q", line, p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A process that logs its address and stops gracefully on SIGTERM.
func TestStartWaitForAddressAndStop(t *testing.T) {
	p := start(t, `trap 'echo "stopping"; exit 0' TERM
echo 'I1127 21:25:03.123456   4242 httpserver.go:42] "Serving" server="probes" address="127.0.0.1:40124"'
while :; do sleep 0.05; done`)
	addr, err := p.WaitForAddress("probes", 10*time.Second)
	if err != nil || addr != "127.0.0.1:40124" {
		t.Fatalf("WaitForAddress = %q, %v", addr, err)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop = %v, want nil", err)
	}
	if !strings.Contains(p.Log(), "stopping") || p.LogTail(1) != "stopping" {
		t.Errorf("log tail = %q, want the process's last line", p.LogTail(1))
	}
	if err := p.Stop(time.Second); err != nil {
		t.Errorf("Stop of a stopped process = %v, want nil", err)
	}
}

func TestStopReportsABadExit(t *testing.T) {
	p := start(t, `trap 'exit 3' TERM; echo ready; while :; do sleep 0.05; done`)
	waitForLine(t, p, "ready") // the trap is set
	if err := p.Stop(10 * time.Second); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Stop = %v, want exit status 3", err)
	}
}

func TestStopKillsAProcessThatIgnoresSIGTERM(t *testing.T) {
	p := start(t, `trap '' TERM; echo ready; while :; do sleep 0.05; done`)
	waitForLine(t, p, "ready")
	if err := p.Stop(300 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not exit") {
		t.Errorf("Stop = %v, want a timeout", err)
	}
	select {
	case <-p.Exited():
	default:
		t.Error("the process still runs after Stop")
	}
}

func TestWaitForAddressOfAProcessThatExits(t *testing.T) {
	p := start(t, `echo 'E1127 cannot load the kubeconfig'; exit 1`)
	if _, err := p.WaitForAddress("metrics", 10*time.Second); err == nil || !strings.Contains(err.Error(), "cannot load the kubeconfig") {
		t.Errorf("WaitForAddress = %v, want an error quoting the log", err)
	}
	if err := p.Wait(); err == nil {
		t.Error("Wait = nil, want exit status 1")
	}
}

func TestStatusKiB(t *testing.T) {
	const status = "Name:\tsample-controller\nVmHWM:\t   91234 kB\nVmRSS:\t   81234 kB\nThreads:\t12\n"
	for field, want := range map[string]float64{"VmRSS": 81234, "VmHWM": 91234} {
		if got, err := statusKiB(status, field); err != nil || got != want {
			t.Errorf("statusKiB(%s) = %v, %v; want %v", field, got, err, want)
		}
	}
	if got, err := statusKiB(status, "VmSwap"); err == nil {
		t.Errorf("statusKiB(VmSwap) = %v, want an error", got)
	}
	// And from a live process: any running process has a resident set.
	p := start(t, "sleep 30")
	if kib, err := p.StatusKiB("VmRSS"); err != nil || kib <= 0 {
		t.Errorf("StatusKiB(VmRSS) of a running process = %v, %v", kib, err)
	}
}

func TestCPUSeconds(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
	line := "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 0 0"
	got, err := cpuSeconds(line, 100)
	if err != nil || got != 3.25 {
		t.Errorf("cpuSeconds = %v, %v; want 3.25 (250 + 75 ticks at 100/s)", got, err)
	}
	for _, bad := range []string{"no parenthesis", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 5"} {
		if _, err := cpuSeconds(bad, 100); err == nil {
			t.Errorf("cpuSeconds(%q) = nil error", bad)
		}
	}
	// This process, busy on one core: its CPU time shows within a few clock ticks (waiting for
	// wall time would not do: on a loaded machine this process may get none of it).
	p := &Process{cmd: exec.Command("true")}
	p.cmd.Process = &os.Process{Pid: os.Getpid()}
	var s float64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if s, err = p.CPUSeconds(); err != nil || s > 0 {
			break
		}
	}
	if err != nil || s <= 0 {
		t.Errorf("CPUSeconds of this process, busy for up to 30s = %v, %v; want > 0", s, err)
	}
}
