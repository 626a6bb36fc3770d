package djangotest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Worker is a running `manage.py runworker CHANNEL...` of the project: Django Channels' own
// background worker, serving named channels through the ChannelNameRouter of project/asgi.py:
//
//   - "thumbnails-generate" (a SyncConsumer): for each {"type": "generate", "id": N} it prints
//     "handled generate id=N" to stdout — the contract of the Go example examples/worker — and,
//     when the message names a group in "notify", group-sends {"type": "thumbnail.done", "id": N}
//     to it;
//   - "interop-jobs" (an AsyncConsumer): for each {"type": "interop.job", "reply_to": CHANNEL, ...}
//     it sends {"type": "interop.handled", "channel": "interop-jobs", "typed": <the message as
//     Python decoded it, in typed JSON>, "message": <the message>} to CHANNEL.
//
// The other direction, a Django view handing work to a Go worker, is Daphne.Send.
//
// Its methods are safe for concurrent use.
type Worker struct {
	PID      int
	Channels []string

	p *process
}

// Output returns what the worker has written to stdout and stderr so far.
func (w *Worker) Output() string { return w.p.out.String() }

// Done is closed when the process has exited.
func (w *Worker) Done() <-chan struct{} { return w.p.done }

// Close stops the worker (SIGTERM, then SIGKILL after 5 s), waits for it and removes its folder.
// It is idempotent. Messages its listener had taken from Redis and not yet handled are lost, as
// with any Channels worker that stops.
func (w *Worker) Close() error { return w.p.close() }

// workerRunning is what runworker logs (on the logger settings.py routes to stderr) just before its
// listeners start.
const workerRunning = "Running worker for channels"

// RunWorker writes the project to a new temporary folder and runs `python manage.py runworker
// channels...` there, on the Redis and prefix of o. It returns once the worker says it is running;
// ctx bounds only the start. Messages sent to its channels before then wait in Redis. Close the
// returned Worker when done.
func RunWorker(ctx context.Context, o Options, channels ...string) (*Worker, error) {
	if len(channels) == 0 {
		return nil, fmt.Errorf("djangotest: RunWorker needs at least one channel")
	}
	o = o.withDefaults()
	running := make(chan struct{}, 1)
	p, err := spawn(o, append([]string{"manage.py", "runworker"}, channels...), func(line string) {
		if strings.Contains(line, workerRunning) {
			select {
			case running <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("djangotest: start runworker: %w", err)
	}
	if _, err := await(ctx, p, o.StartTimeout, running); err != nil {
		return nil, fmt.Errorf("djangotest: runworker %w", err)
	}
	return &Worker{PID: p.cmd.Process.Pid, Channels: channels, p: p}, nil
}

// StartWorker runs a Django worker on channels for the test t and stops it when the test ends,
// logging its output if the test failed. When Django Channels is missing it skips t with the
// install hint (fails it under CI=true).
func StartWorker(t testing.TB, o Options, channels ...string) *Worker {
	t.Helper()
	if err := Check(o.Python); err != nil {
		SkipOrFail(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w, err := RunWorker(ctx, o, channels...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("djangotest: %v", err)
		}
		if t.Failed() {
			t.Logf("runworker %v (pid %d) output:\n%s", w.Channels, w.PID, w.Output())
		}
	})
	return w
}
