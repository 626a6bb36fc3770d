package djangotest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a Python process running the project from a temporary folder of its own: Daphne or a
// `manage.py runworker`. Its output (stdout and stderr) is kept, copied to Options.Output, and
// handed line by line to the onLine function of spawn.
type process struct {
	cmd       *exec.Cmd
	dir       string
	out       *syncBuffer
	done      chan struct{} // closed when the process has exited and its output is drained
	waitErr   error
	closeOnce sync.Once
	closeErr  error
}

// spawn writes the project to a new temporary folder and runs o.Python with args there, with the
// project's settings taken from o.
func spawn(o Options, args []string, onLine func(string)) (*process, error) {
	if err := Check(o.Python); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ginws-djangotest-")
	if err != nil {
		return nil, err
	}
	if err := writeSite(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(o.Python, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
		"DJANGO_SETTINGS_MODULE=project.settings",
		"GINWS_REDIS_HOSTS="+strings.Join(o.RedisHosts, ","),
		"GINWS_CHANNELS_PREFIX="+o.Prefix,
		"GINWS_CHANNELS_CAPACITY="+strconv.Itoa(o.Capacity),
		"GINWS_CHANNELS_EXPIRY="+strconv.Itoa(int(o.Expiry/time.Second)),
	)
	setProcAttr(cmd)
	pr, pw, err := os.Pipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	pw.Close() // the child holds its own copy

	p := &process{cmd: cmd, dir: dir, out: new(syncBuffer), done: make(chan struct{})}
	drained := make(chan struct{})
	go func() { // copies the output until every writer has closed it
		defer close(drained)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.out.WriteLine(line)
			if o.Output != nil {
				fmt.Fprintln(o.Output, line)
			}
			if onLine != nil {
				onLine(line)
			}
		}
		_, _ = io.Copy(io.Discard, pr) // a line too long for the scanner: keep the pipe drained
	}()
	go func() {
		p.waitErr = cmd.Wait()
		<-drained
		close(p.done)
	}()
	return p, nil
}

// await waits for ready; when the process exits, timeout passes or ctx ends first, it closes the
// process and returns an error that says why, with the process's output.
func await[T any](ctx context.Context, p *process, timeout time.Duration, ready <-chan T) (T, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var zero T
	var err error
	select {
	case v := <-ready:
		return v, nil
	case <-p.done:
		err = fmt.Errorf("exited before it was ready (%v):\n%s", p.waitErr, p.out.String())
	case <-timer.C:
		err = fmt.Errorf("was not ready within %v:\n%s", timeout, p.out.String())
	case <-ctx.Done():
		err = ctx.Err()
	}
	p.close()
	return zero, err
}

// close stops the process group (SIGTERM, then SIGKILL after 5 s), waits for it and removes its
// folder. It is idempotent.
func (p *process) close() error {
	p.closeOnce.Do(func() {
		select {
		case <-p.done:
		default:
			signalGroup(p.cmd, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				signalGroup(p.cmd, syscall.SIGKILL)
				<-p.done
			}
		}
		p.closeErr = os.RemoveAll(p.dir)
	})
	return p.closeErr
}
