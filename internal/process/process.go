// Package process runs the controller binary as a separate process, as a user would: its
// output goes to a log file that can be read while it runs (for the addresses its HTTP
// servers listen on, for one), and it is stopped with SIGTERM. The end-to-end tests, the
// benchmark and the soak all run the controller this way.
package process

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a started command whose output goes to a log file.
type Process struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // cmd.Wait's; written before exited is closed
}

// Start starts cmd with its standard output and error going to log, which it closes when the
// process exits (or at once, when it cannot start).
func Start(cmd *exec.Cmd, log *os.File) (*Process, error) {
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &Process{cmd: cmd, logPath: log.Name(), exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to exit and returns how it ended: nil for status 0.
func (p *Process) Wait() error {
	<-p.exited
	return p.err
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process (SIGSTOP and SIGCONT pause and resume it).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop asks the process to stop with SIGTERM, as a user or the kubelet would, and waits up to
// grace for it to exit, then kills it. It returns nil when the process exited with status 0
// within grace, or had exited before Stop; otherwise an error that says which.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("exited with %v after SIGTERM, want status 0", p.err)
		}
		return nil
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("did not exit within %s of SIGTERM", grace)
	}
}

// Kill ends the process with SIGKILL, as a crash or an OOM kill would, and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// LogPath is the log file's path.
func (p *Process) LogPath() string { return p.logPath }

// Log is what the process has written so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// LogTail is the last n lines of the log.
func (p *Process) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StatusKiB reads one memory field of the running process's /proc/PID/status, in KiB:
// "VmRSS" (resident now), "VmHWM" (peak resident), ...
func (p *Process) StatusKiB(field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, err
	}
	return statusKiB(string(b), field)
}

// CPUSeconds is the CPU time the running process has used so far, user and system, from
// /proc/PID/stat.
func (p *Process) CPUSeconds() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0, err
	}
	return cpuSeconds(string(b), clockTicksPerSecond)
}

// clockTicksPerSecond is the unit of /proc/PID/stat's times (USER_HZ): 100 on every Linux
// architecture Go supports.
const clockTicksPerSecond = 100

// cpuSeconds reads utime and stime (fields 14 and 15) of a /proc/PID/stat line. The command
// name, field 2, is in parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ")".
func cpuSeconds(stat string, ticks float64) (float64, error) {
	end := strings.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("not a /proc/PID/stat line: %q", stat)
	}
	f := strings.Fields(stat[end+1:]) // from field 3 (state) on
	if len(f) < 13 {
		return 0, fmt.Errorf("a /proc/PID/stat line too short: %q", stat)
	}
	var total float64
	for _, s := range f[11:13] { // fields 14 and 15
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("a /proc/PID/stat time %q: %w", s, err)
		}
		total += v
	}
	return total / ticks, nil
}

// statusKiB finds `FIELD:   1234 kB` in the text of a /proc/PID/status.
func statusKiB(status, field string) (float64, error) {
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/PID/status", field)
}

var servingRE = regexp.MustCompile(`"Serving" server="([^"]+)" address="([^"]+)"`)

// ServedAddress finds, in a controller's log, the address (host:port) that its HTTP server
// named server ("metrics" or "probes") listens on: pkg/httpserver logs it on starting, which
// tells the port when the controller was given port 0.
func ServedAddress(log, server string) (string, bool) {
	for _, m := range servingRE.FindAllStringSubmatch(log, -1) {
		if m[1] == server {
			return m[2], true
		}
	}
	return "", false
}

// WaitForAddress waits up to timeout for the controller to log the address of its HTTP
// server named server, and returns it.
func (p *Process) WaitForAddress(server string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		exited := false
		select {
		case <-p.exited:
			exited = true // read the log once more: it is complete now
		default:
		}
		if addr, ok := ServedAddress(p.Log(), server); ok {
			return addr, nil
		}
		if exited {
			return "", fmt.Errorf("the controller exited before its %s server started; log %s ends:\n%s", server, p.logPath, p.LogTail(5))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the controller did not start its %s server within %s; log %s ends:\n%s", server, timeout, p.logPath, p.LogTail(5))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
