// Command loadtest drives the chat contract of examples/chat (POST /login, /ws/chat/ROOM/,
// {"message": ...} in and out) against ginws and, in the same run, against a plain
// gorilla/websocket hub and a melody server serving the same contract (and, with -servers, a
// centrifuge server: see below), and prints the figures side by side with their ratios. It starts
// and stops each server itself, as a separate process, so it can read the server's RSS and CPU time
// from /proc.
//
//	cd examples/loadtest
//	go run . -mode all                                  # the report in the README
//	go run . -mode idle -conns 10000                    # RSS per idle connection
//	go run . -mode fanout -conns 1000 -rooms 10 -duration 10s
//	go run . -mode rate -rate 20 -duration 10s          # latency at a fixed rate per room
//	go run . -mode churn -cycles 10000                  # goroutines and heap back at baseline?
//	go run . -mode fanout -servers ginws,ginws-redis    # two chat processes sharing rooms through Redis
//	go run . -mode fanout -servers ginws-redis -linger 2ms  # ... with the layer's ReceiveLinger
//	go run . -mode fanout -servers ginws-redis,django-redis  # ... against Django Channels
//	go run . -mode fanout -servers ginws,ginws-nohistory     # the cost of room history (chat -history=false)
//	go run . -mode fanout -servers ginws,ginws+z,gorilla,gorilla+z -payload notify  # permessage-deflate
//
// A server named with "+z" (ginws, ginws@DIR, gorilla) runs with permessage-deflate on — the chat
// example's -compress, the gorilla hub's EnableCompression — and its clients offer it; the fan-out
// report then gives wire bytes per delivery (what the clients read off their sockets) beside CPU.
//
//	go run . -mode fanout -addr 127.0.0.1:8001,127.0.0.1:8002 -pid 101,102 -redis 127.0.0.1:6379
//	go run . -mode presence -servers ginws-presence    # who-is-here at scale: see presence.go
//
// The server "centrifuge" is cmd/centrifugechat: centrifugal/centrifuge with its default
// configuration and in-memory broker, one channel per room. Its sockets speak centrifuge's client
// protocol, which the load client adapts to the contract (centrifuge.go): connect, subscribe to
// the room's channel, publish {"message": ...}; each publication push carries the message and, as
// centrifuge's ClientInfo, the sender's user.
//
//	go run . -mode fanout -servers ginws,centrifuge,gorilla -conns 10000 -rooms 100
//
// The server "ginws-redis" is two examples/chat processes with -layer redis://127.0.0.1:6379/7 (DB 7
// is emptied before each run); the clients of each room are split between them, so half of every
// room's deliveries cross Redis. Its CPU figure is the sum of both processes; Redis's own CPU time is
// reported beside it. The server "django-redis" is the same for Django Channels: two Daphne
// processes serving the Channels tutorial chat on channels_redis (DB 7, prefix "asgi"), started
// through ginws/redislayer/djangotest/cmd/daphnechat; it needs Debian's python3 with
// python3-django-channels, python3-channels-redis and python3-daphne.
//
// Every run checks that every member of every room received every message of its room, in order,
// and exits non-zero when one did not.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	mode := flag.String("mode", "all", "idle, fanout, rate, churn, presence (with -servers ginws-presence), or all")
	servers := flag.String("servers", "gorilla,melody,ginws", "comma-separated servers to compare, run alternately")
	conns := flag.Int("conns", 1000, "clients (idle, fanout, rate)")
	idleConns := flag.Int("idle-conns", 5000, "clients for the idle mode when -mode all")
	rooms := flag.Int("rooms", 10, "rooms; one sender each")
	duration := flag.Duration("duration", 10*time.Second, "fanout and rate: how long to send")
	window := flag.Int("window", 10, "fanout: messages a sender may be ahead of its slowest member")
	rate := flag.Float64("rate", 20, "rate: messages per second per room")
	cycles := flag.Int("cycles", 10000, "churn: connections opened and closed in all")
	batch := flag.Int("batch", 100, "churn: connections per cycle batch")
	size := flag.Int("size", 32, "bytes of padding per message (-payload pad)")
	payload := flag.String("payload", "pad", "message content: pad (-size bytes of 'x'), chat (an 83-byte chat line) or notify (a ~2 KB JSON notification)")
	rounds := flag.Int("rounds", 1, "repeat each scenario this many times per server, alternating")
	repo := flag.String("repo", "", "ginws repository root (default: found from the working directory)")
	addr := flag.String("addr", "", "load a server already running at `host:port` instead of starting the servers; several comma-separated addresses are processes of one server sharing rooms (clients of each room are split over them)")
	pid := flag.String("pid", "", "with -addr: the server's process IDs (comma-separated, in the order of -addr), to read their RSS and CPU time")
	linger := flag.Duration("linger", 0, "ginws-redis: the chat processes' Redis layer ReceiveLinger (e.g. 2ms)")
	redisAddr := flag.String("redis", "", "with -addr: `host:port` of the Redis the server's processes share, to report its CPU time")
	storm := flag.Int("storm", 1000, "presence: joins per second of the storm, over two processes")
	bigGroup := flag.Int("big", 10000, "presence: members of the group whose list is timed")
	flag.Parse()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if *repo == "" {
		r, err := findRepo()
		if err != nil {
			fail(err)
		}
		*repo = r
	}
	defaultRedis.linger = *linger
	names := strings.Split(*servers, ",")
	var targets map[string]Target
	if *addr != "" {
		names = []string{"external"}
		pids, err := parsePids(*pid)
		if err != nil {
			fail(err)
		}
		ext := Target{Name: "external", addr: *addr, pids: pids}
		if *redisAddr != "" {
			ext.redis = &redisRef{addr: *redisAddr}
		}
		targets = map[string]Target{"external": ext}
	} else {
		dir, err := os.MkdirTemp("", "ginws-loadtest")
		if err != nil {
			fail(err)
		}
		defer os.RemoveAll(dir)
		if targets, err = buildTargets(ctx, *repo, dir, names); err != nil {
			fail(err)
		}
	}
	o := Params{Conns: *conns, Rooms: *rooms, Duration: *duration, Window: *window, Rate: *rate,
		Cycles: *cycles, Batch: *batch, Size: *size, Payload: *payload, Par: 64}

	type scenario struct {
		name string
		run  func(context.Context, *Proc, Params) Result
		o    Params
	}
	all := map[string]scenario{
		"idle":   {"idle", Idle, o},
		"fanout": {"fanout", FanOut, o},
		"rate":   {"rate", FixedRate, o},
		"churn":  {"churn", Churn, o},
	}
	presenceMode := scenario{"presence", nil, o}
	var plan []scenario
	if *mode == "all" {
		idle := all["idle"]
		idle.o.Conns = *idleConns
		plan = []scenario{idle, all["fanout"], all["rate"], all["churn"]}
	} else {
		for _, m := range strings.Split(*mode, ",") {
			sc, ok := all[m]
			if m == "presence" {
				sc, ok = presenceMode, true
			}
			if !ok {
				fail(fmt.Errorf("unknown mode %q", m))
			}
			plan = append(plan, sc)
		}
	}

	fmt.Printf("loadtest: %s, %d CPUs, servers %s; load client on the same machine\n", time.Now().Format(time.RFC3339), numCPU(), *servers)
	var results []Result
	failed := false
	for _, sc := range plan {
		for round := 0; round < *rounds; round++ {
			for _, name := range names {
				p, err := targets[name].Start(ctx)
				if err != nil {
					fail(err)
				}
				fmt.Fprintf(os.Stderr, "… %s on %s (round %d)\n", sc.name, name, round+1)
				var rs []Result
				if sc.name == "presence" {
					rs = PresenceLoad(ctx, p, sc.o, *storm, *bigGroup)
				} else {
					rs = []Result{sc.run(ctx, p, sc.o)}
				}
				p.Stop()
				for _, res := range rs {
					if res.Err != nil {
						failed = true
						fmt.Fprintf(os.Stderr, "FAIL %s on %s: %v\n%s\n", sc.name, name, res.Err, p.Tail())
					}
				}
				results = append(results, rs...)
				if ctx.Err() != nil {
					fail(ctx.Err())
				}
			}
		}
	}
	report(os.Stdout, results)
	if failed {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadtest:", err)
	os.Exit(1)
}
