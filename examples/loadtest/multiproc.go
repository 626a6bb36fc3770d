package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Cross-process fan-out: the "ginws-redis" server is two chat processes sharing rooms through the
// Redis channel layer, and an external server may be several processes (-addr a,b -pid p1,p2), such
// as two Daphne processes running Django's chat on channels_redis. The clients of each room are
// split over the processes, so every message crosses Redis to reach half of its room.

// redisRef is the Redis a multi-process server uses: a database the tool may empty.
type redisRef struct {
	addr   string
	db     int
	linger time.Duration // the processes' redislayer ReceiveLinger (-linger)
}

// defaultRedis is DB 7 of the local Redis, which nothing else in the repository uses.
var defaultRedis = redisRef{addr: "127.0.0.1:6379", db: 7}

func (r redisRef) url() string {
	u := fmt.Sprintf("redis://%s/%d", r.addr, r.db)
	if r.linger > 0 {
		u += "?linger=" + r.linger.String()
	}
	return u
}

// flush empties the database, so that a run starts without the groups of an earlier one.
func (r redisRef) flush(ctx context.Context) error {
	_, err := r.do(ctx, "FLUSHDB")
	return err
}

// CPU returns the CPU time redis-server has used: from /proc when its process is readable (same
// machine), else from INFO cpu (used_cpu_user + used_cpu_sys).
func (r redisRef) CPU(ctx context.Context) (time.Duration, error) {
	info, err := r.do(ctx, "INFO", "server")
	if err != nil {
		return 0, err
	}
	if pid, err := strconv.Atoi(infoField(info, "process_id")); err == nil {
		if d, err := cpuOf(pid); err == nil {
			return d, nil
		}
	}
	if info, err = r.do(ctx, "INFO", "cpu"); err != nil {
		return 0, err
	}
	user, err1 := strconv.ParseFloat(infoField(info, "used_cpu_user"), 64)
	sys, err2 := strconv.ParseFloat(infoField(info, "used_cpu_sys"), 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("INFO cpu: %w", err)
	}
	return time.Duration((user + sys) * float64(time.Second)), nil
}

func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// do runs one command on r's database and returns a simple or bulk string reply. It is the whole
// Redis client this tool needs.
func (r redisRef) do(ctx context.Context, args ...string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	w := bufio.NewWriter(conn)
	rd := bufio.NewReader(conn)
	var reply string
	for _, cmd := range [][]string{{"SELECT", strconv.Itoa(r.db)}, args} {
		fmt.Fprintf(w, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
		}
		if err := w.Flush(); err != nil {
			return "", err
		}
		if reply, err = readReply(rd); err != nil {
			return "", fmt.Errorf("redis %s: %w", cmd[0], err)
		}
	}
	return reply, nil
}

func readReply(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// external returns the already running processes named by -addr (comma-separated) and -pid.
func (t Target) external() (*Proc, error) {
	addrs := strings.Split(t.addr, ",")
	pids := t.pids
	if len(pids) == 0 && t.pid != 0 {
		pids = []int{t.pid}
	}
	if len(pids) != 0 && len(pids) != len(addrs) {
		return nil, fmt.Errorf("-pid names %d processes and -addr %d", len(pids), len(addrs))
	}
	var p *Proc
	for i, a := range addrs {
		q := &Proc{Target: t, Addr: strings.TrimSpace(a)}
		if len(pids) > 0 {
			q.pid = pids[i]
		}
		if p == nil {
			p = q
		} else {
			p.others = append(p.others, q)
		}
	}
	return p, nil
}

// Addrs returns the addresses of the server's processes; room members are spread over them.
func (p *Proc) Addrs() []string {
	out := []string{p.Addr}
	for _, q := range p.others {
		out = append(out, q.Addr)
	}
	return out
}

// parsePids reads -pid: process IDs separated by commas.
func parsePids(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-pid %q: %w", s, err)
		}
		out = append(out, n)
	}
	return out, nil
}
