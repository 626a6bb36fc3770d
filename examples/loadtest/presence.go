package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// PresenceLoad is -mode presence, on -servers ginws-presence (two chat processes with who-is-here
// on one Redis). It measures:
//
//   - the list: a group of -big members (tracked by a layer instance of this tool, standing for a
//     third process) listed through GET /rooms/big/members on both processes, timed and checked;
//   - how soon a join made by one process shows in the list read through the other;
//   - a join/leave storm: two layer instances of this tool (two processes) track -storm users a
//     second, each for one second, in room "storm"; a socket on each chat process watches the
//     room and records every join and leave frame: join-to-frame latency, duplicates, misses;
//   - group sends: the fan-out scenario (-conns, -rooms, -duration) without the storm, then again
//     during the storm and while the big group is listed twice a second; the two throughputs are
//     reported side by side in the fan-out table.
func PresenceLoad(ctx context.Context, p *Proc, o Params, stormRate, big int) []Result {
	fail := func(err error) []Result {
		return []Result{{Mode: "presence", Server: p.Name, Err: err}}
	}
	addrs := p.Addrs()
	if p.redis == nil || len(addrs) < 2 {
		return fail(errors.New("-mode presence needs -servers ginws-presence (two chat processes on Redis)"))
	}
	cfg := redislayer.Config{Hosts: []string{fmt.Sprintf("redis://%s/%d", p.redis.addr, p.redis.db)},
		Logger: slog.New(slog.DiscardHandler)}
	la, err := redislayer.New(cfg)
	if err != nil {
		return fail(err)
	}
	defer la.Close()
	lb, err := redislayer.New(cfg)
	if err != nil {
		return fail(err)
	}
	defer lb.Close()

	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cookies := make([]string, len(addrs))
	for i, a := range addrs {
		if cookies[i], err = login(ctx, hc, a, "lister"); err != nil {
			return fail(err)
		}
	}
	list := func(i int, room string) (int, time.Duration, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addrs[i]+"/rooms/"+room+"/members", nil)
		req.Header.Set("Cookie", cookies[i])
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		var body struct{ Members []layer.PresenceEntry }
		err = json.NewDecoder(resp.Body).Decode(&body)
		d := time.Since(start)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET members: %s", resp.Status)
		}
		return len(body.Members), d, err
	}

	// The big group.
	fmt.Fprintf(os.Stderr, "… presence: tracking %d members in room big\n", big)
	start := time.Now()
	if err := trackMany(ctx, la, "chat_big", "big", big); err != nil {
		return fail(err)
	}
	tracked := time.Since(start)
	var listQuiet []time.Duration
	for k := 0; k < 20; k++ {
		n, d, err := list(k%2, "big")
		if err != nil {
			return fail(err)
		}
		if n != big {
			return fail(fmt.Errorf("the list of room big has %d members, want %d", n, big))
		}
		listQuiet = append(listQuiet, d)
	}

	// A join on one process, seen through the other.
	ch, _ := lb.NewChannel(ctx, "")
	joinAt := time.Now()
	if err := lb.PresenceAdd(ctx, "chat_big", ch, layer.PresenceInfo{User: "probe"}); err != nil {
		return fail(err)
	}
	var visible time.Duration
	for {
		n, _, err := list(0, "big")
		if err != nil {
			return fail(err)
		}
		if n == big+1 {
			visible = time.Since(joinAt)
			break
		}
		if time.Since(joinAt) > 10*time.Second {
			return fail(errors.New("a join never showed in the other process's list"))
		}
	}

	fmt.Fprintf(os.Stderr, "… presence: fan-out without the storm\n")
	quiet := FanOut(ctx, p, o)
	quiet.Server += " (no storm)"

	// The storm, with a watcher on each chat process.
	watchers := make([]*watcher, len(addrs))
	for i, a := range addrs {
		w, err := watch(ctx, hc, a, fmt.Sprintf("watch%d", i))
		if err != nil {
			return fail(err)
		}
		defer w.conn.Close()
		watchers[i] = w
	}
	time.Sleep(500 * time.Millisecond)
	presenceCalls := func() uint64 {
		return la.Stats().Calls["presence"].Count + lb.Stats().Calls["presence"].Count
	}
	callsBefore := presenceCalls()
	var starts sync.Map // user → time.Time of its PresenceAdd
	stormCtx, stopStorm := context.WithCancel(ctx)
	var stormWG sync.WaitGroup
	var users, stormErrs atomic.Int64
	var firstErr atomic.Value
	stormWG.Add(1)
	go func() { // the storm: stormRate joins a second, in ticks of 10 ms, alternating processes
		defer stormWG.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		perTick := max(stormRate/100, 1)
		for i := 0; ; {
			select {
			case <-stormCtx.Done():
				return
			case <-tick.C:
			}
			for k := 0; k < perTick; k++ {
				i++
				l := la
				if i%2 == 1 {
					l = lb
				}
				user := fmt.Sprintf("storm%d", i)
				users.Add(1)
				stormWG.Add(1)
				go func() {
					defer stormWG.Done()
					ch, _ := l.NewChannel(ctx, "")
					starts.Store(user, time.Now())
					if err := l.PresenceAdd(ctx, "chat_storm", ch, layer.PresenceInfo{User: user}); err != nil {
						stormErrs.Add(1)
						firstErr.CompareAndSwap(nil, err)
						return
					}
					time.Sleep(time.Second)
					if err := l.PresenceDiscard(ctx, "chat_storm", ch); err != nil {
						stormErrs.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}()
			}
		}
	}()
	var listStorm []time.Duration
	var listBad atomic.Int64
	stormWG.Add(1)
	go func() { // the big list, twice a second, during the storm
		defer stormWG.Done()
		for k := 0; stormCtx.Err() == nil; k++ {
			n, d, err := list(k%2, "big")
			if err != nil || n != big+1 {
				listBad.Add(1)
			} else {
				listStorm = append(listStorm, d)
			}
			select {
			case <-stormCtx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	time.Sleep(time.Second) // the storm reaches its steady state (users stay one second)
	fmt.Fprintf(os.Stderr, "… presence: fan-out during a storm of %d joins/s\n", stormRate)
	storm := FanOut(ctx, p, o)
	storm.Server += fmt.Sprintf(" (storm %d joins/s)", stormRate)
	stopStorm()
	stormWG.Wait()
	stormCalls := presenceCalls() - callsBefore
	// The last leaves reach the watchers: wait until every watcher has seen every user join and
	// leave, 30 s at most; what is still missing then is counted below.
	n := int(users.Load())
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, missing := stormEvents(watchers, n); missing == 0 {
			break
		}
	}

	// Why a watcher missed events, if it did: its server's counters, and how its socket ended.
	var dropped, slow uint64
	for _, a := range addrs {
		st, err := serverStats(ctx, hc, a)
		if err != nil {
			return fail(err)
		}
		dropped += st.DroppedEvents
		slow += st.SlowClients
	}
	var lat []time.Duration
	dups, missing := stormEvents(watchers, n)
	for _, w := range watchers {
		w.mu.Lock()
		for user, at := range w.joinAt {
			if s, ok := starts.Load(user); ok {
				lat = append(lat, at.Sub(s.(time.Time)))
			}
		}
		w.mu.Unlock()
	}
	fmt.Printf("\npresence: %s, %d processes sharing Redis\n", p.Name, len(addrs))
	fmt.Printf("  list of a %d-member group (GET /rooms/big/members, alternating processes): quiet %s; during the storm %s (%d wrong or failed)\n",
		big, pct(listQuiet), pct(listStorm), listBad.Load())
	fmt.Printf("  tracking the %d members from one more layer instance took %v\n", big, tracked.Round(time.Millisecond))
	fmt.Printf("  a join made by one process was in the list read through the other after %v\n", visible.Round(100*time.Microsecond))
	fmt.Printf("  storm: %d users joined and left (%d/s over two layer instances, each present 1 s); %d watchers\n", n, stormRate, len(watchers))
	fmt.Printf("  join → join frame at a watcher: %s; duplicate join/leave frames: %d; users a watcher never saw join or leave: %d; failed calls: %d\n",
		pct(lat), dups, missing, stormErrs.Load())
	fmt.Printf("  the tool's layers could not announce %d events; the chat processes dropped %d (a connection's full event queue) and closed %d slow clients",
		la.Stats().PresenceLost+lb.Stats().PresenceLost, dropped, slow)
	for i, w := range watchers {
		w.mu.Lock()
		if w.err != nil {
			fmt.Printf("; watcher %d's socket ended: %v", i, w.err)
		}
		w.mu.Unlock()
	}
	fmt.Println()
	if stormCalls > 0 {
		fmt.Printf("  the storm's %d tracks and untracks took %d presence script calls (%.1f per call)\n", 2*n, stormCalls, float64(2*n)/float64(stormCalls))
	}
	if quiet.Elapsed > 0 && storm.Elapsed > 0 && quiet.DeliveriesPerSec() > 0 {
		fmt.Printf("  group sends: %.0f deliveries/s without the storm, %.0f during it: %.2f×\n",
			quiet.DeliveriesPerSec(), storm.DeliveriesPerSec(), storm.DeliveriesPerSec()/quiet.DeliveriesPerSec())
	}
	if e, _ := firstErr.Load().(error); e != nil {
		fmt.Printf("  first failed call: %v\n", e)
	}
	if dups > 0 || missing > 0 || listBad.Load() > 0 {
		storm.Err = errors.Join(storm.Err, fmt.Errorf("presence: %d duplicate frames, %d missed users, %d wrong lists", dups, missing, listBad.Load()))
	}
	return []Result{quiet, storm}
}

// trackMany tracks n users ("<prefix>N") in group from l, 64 at a time.
func trackMany(ctx context.Context, l *redislayer.Layer, group, prefix string, n int) error {
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	sem := make(chan struct{}, 64)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ch, _ := l.NewChannel(ctx, "")
			if err := l.PresenceAdd(ctx, group, ch, layer.PresenceInfo{User: fmt.Sprintf("%s%d", prefix, i)}); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// stormEvents counts, over all watchers, the extra join and leave frames of users storm1..stormN
// (dups) and the (watcher, user) pairs that lack a join or a leave (missing).
func stormEvents(watchers []*watcher, n int) (dups, missing int) {
	for _, w := range watchers {
		w.mu.Lock()
		for i := 1; i <= n; i++ {
			user := fmt.Sprintf("storm%d", i)
			j, l := w.joins[user], w.leaves[user]
			dups += max(j-1, 0) + max(l-1, 0)
			if j == 0 || l == 0 {
				missing++
			}
		}
		w.mu.Unlock()
	}
	return dups, missing
}

// watcher is a socket in room "storm" that records the join and leave frames it gets.
type watcher struct {
	conn *websocket.Conn

	mu     sync.Mutex // guards the maps, written by the read goroutine
	joins  map[string]int
	leaves map[string]int
	joinAt map[string]time.Time // first join frame per user
	err    error                // why the socket ended, if it did
}

// chatStats are the counters of ginws.Stats the presence report shows.
type chatStats struct {
	DroppedEvents uint64
	SlowClients   uint64
}

// serverStats reads the counters of the chat process at addr (/debug/stats, served with -debug).
func serverStats(ctx context.Context, hc *http.Client, addr string) (chatStats, error) {
	var body struct{ WS chatStats }
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/stats", nil)
	if err != nil {
		return body.WS, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return body.WS, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return body.WS, fmt.Errorf("GET /debug/stats: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	return body.WS, err
}

func watch(ctx context.Context, hc *http.Client, addr, name string) (*watcher, error) {
	cookie, err := login(ctx, hc, addr, name)
	if err != nil {
		return nil, err
	}
	conn, _, err := dialer.DialContext(ctx, "ws://"+addr+"/ws/chat/storm/", http.Header{"Cookie": {cookie}})
	if err != nil {
		return nil, err
	}
	w := &watcher{conn: conn, joins: map[string]int{}, leaves: map[string]int{}, joinAt: map[string]time.Time{}}
	go func() {
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				return
			}
			now := time.Now()
			var f struct{ Event, User string }
			if json.Unmarshal(data, &f) != nil || !strings.HasPrefix(f.User, "storm") {
				continue
			}
			w.mu.Lock()
			switch f.Event {
			case "join":
				w.joins[f.User]++
				if _, ok := w.joinAt[f.User]; !ok {
					w.joinAt[f.User] = now
				}
			case "leave":
				w.leaves[f.User]++
			}
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// pct formats the p50, p99 and max of ds in ms.
func pct(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(int(q*float64(len(s))), len(s)-1)] }
	return fmt.Sprintf("p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d samples)", ms(at(0.5)), ms(at(0.99)), ms(s[len(s)-1]), len(s))
}
