// Command daphnechat serves the Django Channels tutorial chat (djangotest's embedded project) with
// one or more Daphne processes on one Redis, for measuring Django Channels with the repository's
// load tool. It prints the flags to hand to the load tool and runs until interrupted.
//
//	go run ./ginws/redislayer/djangotest/cmd/daphnechat -n 2
//	# prints: -addr 127.0.0.1:PORT1,127.0.0.1:PORT2 -pid PID1,PID2
//	cd examples/loadtest && go run . -mode fanout -conns 1000 -rooms 10 -addr ... -pid ...
//
// It needs Debian's python3 with Django Channels (apt-get install python3-django-channels
// python3-channels-redis python3-daphne) and Redis. It flushes the Redis database it uses at start.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"ginws.dev/ginws/redislayer/djangotest"
)

func main() {
	n := flag.Int("n", 1, "Daphne processes to start (all on the same Redis)")
	redis := flag.String("redis", djangotest.DefaultRedisURL, "channels_redis host `URL`")
	prefix := flag.String("prefix", "asgi", "channels_redis key prefix")
	capacity := flag.Int("capacity", 100, "channels_redis capacity per channel")
	flush := flag.Bool("flush", true, "FLUSHDB the Redis database first")
	verbose := flag.Bool("v", false, "log every request")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *flush {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := djangotest.Command(fctx, *redis, "FLUSHDB")
		cancel()
		if err != nil {
			fail(err)
		}
	}
	var addrs, pids []string
	var running []*djangotest.Daphne
	defer func() {
		for _, d := range running {
			d.Close()
		}
	}()
	for i := 0; i < *n; i++ {
		o := djangotest.Options{RedisHosts: []string{*redis}, Prefix: *prefix, Capacity: *capacity, Verbose: *verbose}
		if *verbose {
			o.Output = os.Stderr
		}
		d, err := djangotest.Run(ctx, o)
		if err != nil {
			for _, d := range running {
				d.Close()
			}
			fail(err)
		}
		running = append(running, d)
		addrs = append(addrs, d.Addr)
		pids = append(pids, strconv.Itoa(d.PID))
		fmt.Fprintf(os.Stderr, "daphne %d: http://%s (pid %d)\n", i+1, d.Addr, d.PID)
	}
	fmt.Printf("-addr %s -pid %s\n", strings.Join(addrs, ","), strings.Join(pids, ","))

	select {
	case <-ctx.Done():
	case <-firstDone(running):
		fmt.Fprintln(os.Stderr, "daphnechat: a Daphne process exited")
	}
}

// firstDone is closed when any of ds exits.
func firstDone(ds []*djangotest.Daphne) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	for _, d := range ds {
		go func() {
			<-d.Done()
			once.Do(func() { close(ch) })
		}()
	}
	return ch
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "daphnechat:", err)
	os.Exit(1)
}
