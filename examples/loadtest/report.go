package main

import (
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

// report prints one table per mode, averaged over rounds, then the ratios and targets.
func report(w io.Writer, results []Result) {
	byMode := map[string][]Result{}
	var modes []string
	for _, r := range results {
		if _, ok := byMode[r.Mode]; !ok {
			modes = append(modes, r.Mode)
		}
		byMode[r.Mode] = append(byMode[r.Mode], r)
	}
	for _, m := range modes {
		rs := merge(byMode[m])
		fmt.Fprintf(w, "\n%s\n", title(m, rs))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		switch m {
		case "idle":
			fmt.Fprintln(tw, "server\tconns\tRSS before MB\tRSS after MB\tRSS KB/conn\tlost\t")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%d\t\n", r.Server, r.Conns, mb(r.RSSBefore), mb(r.RSSAfter), r.RSSPerConn/1024, r.Lost)
			}
		case "fanout":
			fmt.Fprintln(tw, "server\tprocs\tconns\trooms\tdeliveries\tdeliveries/s\tserver CPU µs/delivery\tRedis CPU µs/delivery\twrite syscalls/delivery\twire B/delivery\tlost\t")
			for _, r := range rs {
				redis := "-"
				if r.RedisCPU > 0 && r.Deliveries > 0 {
					redis = fmt.Sprintf("%.2f", us(r.RedisCPU/time.Duration(r.Deliveries)))
				}
				// Python's socket send() is not a write() and /proc/PID/io syscw does not count it:
				// no count is no figure, not zero calls.
				writes := "-"
				if r.Writes > 0 {
					writes = fmt.Sprintf("%.3f", r.WritesPerDelivery())
				}
				wire := "-"
				if r.Deliveries > 0 {
					wire = fmt.Sprintf("%.0f", float64(r.WireIn)/float64(r.Deliveries))
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.0f\t%.2f\t%s\t%s\t%s\t%d\t\n", r.Server, max(r.Procs, 1), r.Conns, r.Rooms, r.Deliveries, r.DeliveriesPerSec(), us(r.CPUPerDelivery()), redis, writes, wire, r.Lost)
			}
		case "rate":
			fmt.Fprintln(tw, "server\tconns\trooms\tdeliveries\tp50 ms\tp99 ms\tmax ms\tserver CPU µs/delivery\tlost\t")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t\n", r.Server, r.Conns, r.Rooms, r.Deliveries, ms(r.P50), ms(r.P99), ms(r.Max), us(r.CPUPerDelivery()), r.Lost)
			}
		case "churn":
			fmt.Fprintln(tw, "server\tcycles\tgoroutines before→after\theap MB before→after\tRSS MB before→after\tlost\t")
			for _, r := range rs {
				fmt.Fprintf(tw, "%s\t%d\t%d → %d\t%.1f → %.1f\t%.1f → %.1f\t%d\t\n", r.Server, r.Conns, r.GoroutinesBefore, r.GoroutinesAfter,
					mb(int64(r.HeapBefore)), mb(int64(r.HeapAfter)), mb(r.RSSBefore), mb(r.RSSAfter), r.Lost)
			}
		}
		tw.Flush()
		ratios(w, m, rs)
	}
}

func title(mode string, rs []Result) string {
	if len(rs) == 0 {
		return mode
	}
	r := rs[0]
	switch mode {
	case "idle":
		return fmt.Sprintf("idle: %d connections in %d rooms; server RSS growth per connection", r.Conns, r.Rooms)
	case "fanout":
		return fmt.Sprintf("fan-out: %d connections in %d rooms, one sender per room, as fast as the slowest member allows", r.Conns, r.Rooms)
	case "rate":
		return fmt.Sprintf("fixed rate: %d connections in %d rooms; delivery latency", r.Conns, r.Rooms)
	case "churn":
		return fmt.Sprintf("churn: %d connections opened, used and closed", r.Conns)
	}
	return mode
}

// merge averages the rounds of each server.
func merge(rs []Result) []Result {
	var order []string
	sum := map[string]*Result{}
	n := map[string]int{}
	for _, r := range rs {
		s, ok := sum[r.Server]
		if !ok {
			order = append(order, r.Server)
			c := r
			sum[r.Server], n[r.Server] = &c, 1
			continue
		}
		n[r.Server]++
		s.Deliveries += r.Deliveries
		s.Elapsed += r.Elapsed
		s.CPU += r.CPU
		s.Writes += r.Writes
		s.WireIn += r.WireIn
		s.RedisCPU += r.RedisCPU
		s.RSSPerConn += r.RSSPerConn
		s.Lost += r.Lost
		if s.Err == nil {
			s.Err = r.Err
		}
		s.P50, s.P99, s.Max = s.P50+r.P50, s.P99+r.P99, max(s.Max, r.Max)
	}
	out := make([]Result, 0, len(order))
	for _, name := range order {
		s := *sum[name]
		k := n[name]
		s.RSSPerConn /= float64(k)
		s.P50 /= time.Duration(k)
		s.P99 /= time.Duration(k)
		out = append(out, s)
	}
	return out
}

func ratios(w io.Writer, mode string, rs []Result) {
	find := func(name string) (Result, bool) {
		for _, r := range rs {
			if r.Server == name {
				return r, true
			}
		}
		return Result{}, false
	}
	g, okG := find("ginws")
	var lines []string
	for _, peer := range []string{"gorilla", "melody", "centrifuge"} {
		p, ok := find(peer)
		if !ok || !okG {
			continue
		}
		switch mode {
		case "idle":
			lines = append(lines, fmt.Sprintf("ginws/%s RSS per connection: %.2f", peer, g.RSSPerConn/p.RSSPerConn))
		case "fanout":
			lines = append(lines, fmt.Sprintf("ginws/%s CPU per delivery: %.2f; deliveries/s: %.2f", peer,
				float64(g.CPUPerDelivery())/float64(p.CPUPerDelivery()), g.DeliveriesPerSec()/p.DeliveriesPerSec()))
		case "rate":
			lines = append(lines, fmt.Sprintf("ginws/%s p99 latency: %.2f", peer, float64(g.P99)/float64(p.P99)))
		}
	}
	if okG {
		switch mode {
		case "idle":
			lines = append(lines, verdict(g.RSSPerConn <= 12*1024, fmt.Sprintf("target: ginws ≤ 12 KB RSS per idle connection (%.1f KB)", g.RSSPerConn/1024)))
		case "fanout":
			if p, ok := find("gorilla"); ok {
				r := float64(g.CPUPerDelivery()) / float64(p.CPUPerDelivery())
				lines = append(lines, verdict(r <= 0.8, fmt.Sprintf("target: ginws CPU per delivery ≤ 0.8× the gorilla hub's (%.2f×)", r)))
			}
			if p, ok := find("centrifuge"); ok {
				lines = append(lines, centrifugeTarget(g, p))
			}
		case "rate":
			if p, ok := find("gorilla"); ok {
				lines = append(lines, verdict(g.P99 <= p.P99, fmt.Sprintf("target: ginws p99 ≤ the gorilla hub's (%.2f ms vs %.2f ms)", ms(g.P99), ms(p.P99))))
			}
		case "churn":
			lines = append(lines, verdict(g.GoroutinesAfter <= g.GoroutinesBefore+churnGoroutineSlack,
				fmt.Sprintf("target: ginws goroutines back at baseline (%d → %d)", g.GoroutinesBefore, g.GoroutinesAfter)))
		}
		lines = append(lines, verdict(g.Lost == 0 && g.Err == nil, fmt.Sprintf("ginws lost no message (%d lost)", g.Lost)))
	}
	if r, ok := find("ginws-redis"); ok && mode == "fanout" {
		lines = append(lines, verdict(r.DeliveriesPerSec() >= 80000,
			fmt.Sprintf("target: ginws-redis (two processes over Redis) ≥ 80 000 deliveries/s (%.0f)", r.DeliveriesPerSec())))
		lines = append(lines, verdict(r.Lost == 0 && r.Err == nil, fmt.Sprintf("ginws-redis lost no message (%d lost)", r.Lost)))
	}
	if mode == "fanout" {
		lines = append(lines, djangoRatios(find)...)
		lines = append(lines, deflateRatios(find)...)
	}
	for _, r := range rs {
		if r.Err != nil {
			lines = append(lines, fmt.Sprintf("note: the %s run failed (%v); its row stops where it failed", r.Server, r.Err))
		}
	}
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
}

// centrifugeTarget is issue 18's target against centrifuge: ginws' CPU per delivery at most 0.6×
// centrifuge's with 10 000 sockets in 100 rooms. At another size the ratio is printed without a
// verdict.
func centrifugeTarget(g, c Result) string {
	r := float64(g.CPUPerDelivery()) / float64(c.CPUPerDelivery())
	const conns, rooms = 10000, 100
	if g.Conns != conns || g.Rooms != rooms || c.Conns != conns || c.Rooms != rooms {
		return fmt.Sprintf("target ginws CPU per delivery ≤ 0.6× centrifuge's is for %d sockets in %d rooms (-conns %d -rooms %d); here, at %d in %d: %.2f×",
			conns, rooms, conns, rooms, g.Conns, g.Rooms, r)
	}
	return verdict(r <= 0.6, fmt.Sprintf("target: ginws CPU per delivery ≤ 0.6× centrifuge's at %d sockets in %d rooms (%.2f×)", conns, rooms, r))
}

func verdict(ok bool, s string) string {
	if ok {
		return "PASS " + s
	}
	return "MISS " + s
}

func mb(b int64) float64         { return float64(b) / (1 << 20) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// deflateRatios compares the "+z" servers (permessage-deflate) with their plain selves and ginws+z
// with gorilla+z: wire bytes per delivery (target: at least 2× fewer on ~2 KB payloads) and CPU per
// delivery (target: ginws+z ≤ 0.3× gorilla+z's).
func deflateRatios(find func(string) (Result, bool)) []string {
	var lines []string
	wire := func(r Result) float64 { return float64(r.WireIn) / float64(max(r.Deliveries, 1)) }
	for _, name := range []string{"ginws", "gorilla"} {
		z, okZ := find(name + "+z")
		p, okP := find(name)
		if okZ && okP {
			lines = append(lines, fmt.Sprintf("%s: wire bytes per delivery %.0f plain, %.0f compressed (%.2f× fewer); CPU per delivery %.2f → %.2f µs",
				name, wire(p), wire(z), wire(p)/wire(z), us(p.CPUPerDelivery()), us(z.CPUPerDelivery())))
		}
	}
	g, okG := find("ginws+z")
	h, okH := find("gorilla+z")
	if okG && okH {
		r := float64(g.CPUPerDelivery()) / float64(h.CPUPerDelivery())
		lines = append(lines, verdict(r <= 0.3, fmt.Sprintf("target: ginws+z CPU per delivery ≤ 0.3× gorilla+z's (%.2f×)", r)))
	}
	return lines
}
