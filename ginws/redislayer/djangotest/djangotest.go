// Package djangotest runs a real Django Channels project under Daphne, for tests that check that
// ginws and Django Channels share groups and channels through one Redis (channels_redis 4.x).
//
// The project (embedded, written to a temporary folder for each run) has no database. It serves:
//   - POST /login — answers 200 and sets a dummy cookie, so tools that sign in first (the
//     repository's load tool) can drive it;
//   - POST /send — a view that calls channel_layer.send (see Daphne.Send);
//   - /ws/chat/<room>/ — the Channels tutorial's ChatConsumer: group chat_<room>, events
//     {"type": "chat.message", "message": ...}, frames {"message": ...};
//   - /ws/interop/<group>/ — a consumer that joins <group>, reports its channel name, shows every
//     layer event it receives and sends events on command (see Client and typed JSON);
//   - the named channels "thumbnails-generate" and "interop-jobs", for `manage.py runworker`
//     (see RunWorker and Worker).
//
// Start needs Debian's Python with Django, Channels, channels_redis and Daphne:
//
//	apt-get install python3-django-channels python3-channels-redis python3-daphne
//
// When they are missing, Start skips the test with that hint — or fails it when the environment
// variable CI is "true", because CI must never pass by skipping.
package djangotest

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer/redistest"
)

// The explicit patterns include __init__.py (a directory pattern would leave out files starting
// with '_') and leave out __pycache__.
//
//go:embed djangosite/manage.py djangosite/project/*.py
var site embed.FS

// DefaultPython is Debian's interpreter, the one the apt packages install into. The python3 found
// on PATH may be another one without Django.
const DefaultPython = "/usr/bin/python3"

// InstallHint says how to get what Start needs on Debian and Ubuntu.
const InstallHint = "apt-get install python3-django-channels python3-channels-redis python3-daphne"

// ErrMissing is wrapped by the error Run returns when Python or one of its packages is missing.
var ErrMissing = errors.New("djangotest: Django Channels is not installed")

// Options configures a Daphne run. The zero value serves the project on a free loopback port with
// channels_redis on redis://127.0.0.1:6379/4 and its default prefix "asgi".
type Options struct {
	// RedisHosts are channels_redis hosts. Optional. Default ["redis://127.0.0.1:6379/4"].
	RedisHosts []string
	// Prefix is the channels_redis key prefix. Optional. Default "asgi".
	Prefix string
	// Capacity is the channels_redis capacity per channel. Optional. Default 100.
	Capacity int
	// Expiry is the channels_redis message expiry. Optional. Default 60 s.
	Expiry time.Duration
	// Port is the port to listen on. Optional. Default: one the kernel picks.
	Port int
	// Python is the interpreter. Optional. Default DefaultPython.
	Python string
	// StartTimeout bounds the wait for Daphne to listen. Optional. Default 60 s.
	StartTimeout time.Duration
	// Output also receives Daphne's output as it runs. Optional. Default: it is only kept (see
	// Daphne.Output), and Start logs it when the test fails.
	Output io.Writer
	// Verbose makes Daphne log every request (Daphne -v 2). Optional. Default false (-v 1).
	Verbose bool
}

func (o Options) withDefaults() Options {
	if len(o.RedisHosts) == 0 {
		o.RedisHosts = []string{"redis://127.0.0.1:6379/4"}
	}
	if o.Prefix == "" {
		o.Prefix = "asgi"
	}
	if o.Capacity <= 0 {
		o.Capacity = 100
	}
	if o.Expiry <= 0 {
		o.Expiry = 60 * time.Second
	}
	if o.Python == "" {
		o.Python = DefaultPython
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	return o
}

// Daphne is a running Daphne process serving the project. Its methods are safe for concurrent use.
type Daphne struct {
	Addr string // host:port it listens on
	PID  int

	p *process
}

// URL returns the http:// URL of path.
func (d *Daphne) URL(path string) string { return "http://" + d.Addr + path }

// WSURL returns the ws:// URL of path.
func (d *Daphne) WSURL(path string) string { return "ws://" + d.Addr + path }

// Output returns what Daphne has written to stdout and stderr so far.
func (d *Daphne) Output() string { return d.p.out.String() }

// Send has the project's HTTP view POST /send call channel_layer.send(channel, msg) — an ordinary
// Django view handing work to a background worker — and returns once the send has returned. msg
// travels to the view in typed JSON, so its values reach channels_redis with their kinds.
func (d *Daphne) Send(ctx context.Context, channel string, msg layer.Message) error {
	ev, err := MarshalTyped(msg)
	if err != nil {
		return err
	}
	body, err := json.Marshal(struct {
		Channel string          `json:"channel"`
		Event   json.RawMessage `json:"event"`
	}{channel, ev})
	if err != nil {
		return err
	}
	ctx, cancel := withDefaultWait(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL("/send"), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("djangotest: POST /send: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("djangotest: POST /send: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// Done is closed when the process has exited.
func (d *Daphne) Done() <-chan struct{} { return d.p.done }

// Close stops Daphne (SIGTERM, then SIGKILL after 5 s), waits for it and removes its folder. It is
// idempotent.
func (d *Daphne) Close() error { return d.p.close() }

// Check reports whether python can import django, channels, channels_redis and daphne. The error
// wraps ErrMissing and says how to install them.
func Check(python string) error {
	if python == "" {
		python = DefaultPython
	}
	checkMu.Lock()
	defer checkMu.Unlock()
	if err, ok := checked[python]; ok {
		return err
	}
	var err error
	out, runErr := exec.Command(python, "-c", "import django, channels, channels_redis, daphne, msgpack").CombinedOutput()
	if runErr != nil {
		detail := runErr.Error()
		if l := lastLine(out); l != "" {
			detail += ": " + l // e.g. ModuleNotFoundError: No module named 'channels_redis'
		}
		err = fmt.Errorf("%w (%s: %s); install it with: %s", ErrMissing, python, detail, InstallHint)
	}
	checked[python] = err
	return err
}

var (
	checkMu sync.Mutex
	checked = map[string]error{}
)

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

var listening = regexp.MustCompile(`Listening on TCP address (\S+):(\d+)`)

// Run writes the project to a new temporary folder and starts Daphne on it. It returns once Daphne
// accepts connections; ctx bounds only the start. Close the returned Daphne when done.
func Run(ctx context.Context, o Options) (*Daphne, error) {
	o = o.withDefaults()
	verbosity := "1"
	if o.Verbose {
		verbosity = "2"
	}
	addr := make(chan string, 1)
	p, err := spawn(o, []string{"-m", "daphne", "-v", verbosity, "-b", "127.0.0.1", "-p", strconv.Itoa(o.Port),
		"project.asgi:application"}, func(line string) {
		if m := listening.FindStringSubmatch(line); m != nil {
			select {
			case addr <- net.JoinHostPort(m[1], m[2]):
			default:
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("djangotest: start daphne: %w", err)
	}
	d := &Daphne{PID: p.cmd.Process.Pid, p: p}
	if d.Addr, err = await(ctx, p, o.StartTimeout, addr); err != nil {
		return nil, fmt.Errorf("djangotest: daphne %w", err)
	}
	// "Listening" is logged once the socket is bound; make sure it accepts.
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", d.Addr)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("djangotest: daphne logged %s but does not accept: %w", d.Addr, err)
	}
	conn.Close()
	return d, nil
}

func writeSite(dir string) error {
	return fs.WalkDir(site, "djangosite", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, strings.TrimPrefix(path, "djangosite"))
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := site.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

// Start runs Daphne for the test t and stops it when the test ends, logging its output if the test
// failed. When Django Channels is missing it skips t with the install hint (fails it under CI=true).
func Start(t testing.TB, o Options) *Daphne {
	t.Helper()
	if err := Check(o.Python); err != nil {
		SkipOrFail(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("djangotest: %v", err)
		}
		if t.Failed() {
			t.Logf("daphne (pid %d, %s) output:\n%s", d.PID, d.Addr, d.Output())
		}
	})
	return d
}

// SkipOrFail skips t with msg — or fails it when the environment variable CI is "true", so that a
// CI run cannot pass by skipping.
func SkipOrFail(t testing.TB, msg string) { t.Helper(); redistest.SkipOrFail(t, msg) }

// syncBuffer collects output lines for concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) WriteLine(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() < 4<<20 { // bounded: a chatty server must not eat the test's memory
		s.b.WriteString(line)
		s.b.WriteByte('\n')
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
