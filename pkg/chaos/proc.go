package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one OS process the harness runs, stops, kills and restarts. Its
// stdout and stderr go to one log file that every start appends to, with a
// marker line, so a tail shows what happened across restarts.
type Proc struct {
	// Name labels the process in messages ("submitter-1").
	Name string
	// Path, Args, Env and Dir describe how it is started: exactly the same
	// way every time.
	Path string
	Args []string
	Env  []string
	Dir  string
	// Log is the path of its log file.
	Log string

	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{} // closed when the current run has exited
	expected   bool          // the harness stopped or killed the current run
	paused     bool
	starts     int
	unexpected []string // exits nobody asked for, with their status
}

// Start runs the process (again). It is an error to start one that runs.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("chaos: start %s: already running (pid %d)", p.Name, p.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("chaos: start %s: open log: %w", p.Name, err)
	}
	p.starts++
	fmt.Fprintf(f, "=== chaos: start #%d of %s at %s\n", p.starts, p.Name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = p.Env
	cmd.Dir = p.Dir
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group: a Ctrl-C in the terminal running the tests
	// must not reach the workers before the harness stops them in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("chaos: start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.expected, p.paused = cmd, done, false, false
	n := p.starts
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		if !p.expected {
			p.unexpected = append(p.unexpected, fmt.Sprintf("%s (pid %d, start #%d) exited on its own at %s: %v",
				p.Name, cmd.Process.Pid, n, time.Now().Format("15:04:05.000"), exitStatus(err)))
		}
		p.mu.Unlock()
		fmt.Fprintf(f, "=== chaos: %s exited: %v\n", p.Name, exitStatus(err))
		_ = f.Close()
		close(done)
	}()
	return nil
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Proc) Kill() error { return p.signalAndWait(syscall.SIGKILL, 30*time.Second) }

// Stop sends SIGTERM and waits up to timeout for a clean exit, then kills.
// It reports whether the process had to be killed.
func (p *Proc) Stop(timeout time.Duration) (killed bool, err error) {
	err = p.signalAndWait(syscall.SIGTERM, timeout)
	if err == nil || !errors.Is(err, errTimeout) {
		return false, err
	}
	return true, p.Kill()
}

var errTimeout = errors.New("timed out")

func (p *Proc) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil || isClosed(done) {
		p.mu.Unlock()
		return nil
	}
	p.expected = true
	if p.paused && sig != syscall.SIGKILL {
		// A stopped process cannot act on SIGTERM.
		_ = signalGroup(cmd, syscall.SIGCONT)
		p.paused = false
	}
	err := signalGroup(cmd, sig)
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("chaos: signal %s to %s: %w", sig, p.Name, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("chaos: %s did not exit %s after %s: %w", p.Name, timeout, sig, errTimeout)
	}
}

// Restart kills the process (if it runs) and starts it again.
func (p *Proc) Restart() error {
	if err := p.Kill(); err != nil {
		return err
	}
	return p.Start()
}

// Pause freezes the process with SIGSTOP; Resume thaws it with SIGCONT.
func (p *Proc) Pause() error { return p.setPaused(true) }

// Resume continues a paused process.
func (p *Proc) Resume() error { return p.setPaused(false) }

func (p *Proc) setPaused(on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.done) {
		return fmt.Errorf("chaos: pause/resume %s: not running", p.Name)
	}
	sig := syscall.SIGCONT
	if on {
		sig = syscall.SIGSTOP
	}
	if err := signalGroup(p.cmd, sig); err != nil {
		return fmt.Errorf("chaos: signal %s to %s: %w", sig, p.Name, err)
	}
	p.paused = on
	return nil
}

// Running reports whether the current run has not exited.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.done)
}

// PID is the current run's process id (0 before the first start).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Starts counts how often the process was started.
func (p *Proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// Unexpected lists the exits the harness did not cause.
func (p *Proc) Unexpected() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.unexpected...)
}

// Tail returns the last n lines of the log file.
func (p *Proc) Tail(n int) string { return tailFile(p.Log, n) }

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer func() { _ = f.Close() }()
	// The last 64 KiB hold far more than n lines of any worker's log.
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		_, _ = f.Seek(fi.Size()-window, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	b = bytes.TrimRight(b, "\n")
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// signalGroup signals the process's whole group (it leads one, see Start),
// so nothing it started outlives it. A group already gone is not an error.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	err := syscall.Kill(-cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
		}
	}
	return err.Error()
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}
