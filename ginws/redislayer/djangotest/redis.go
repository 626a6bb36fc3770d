package djangotest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// DefaultRedisURL is the Redis database the Django interop tests use (DB 4, kept apart from the
// other test packages of the repository).
const DefaultRedisURL = "redis://127.0.0.1:6379/4"

// FlushDB empties the one Redis database named by redisURL ("redis://host:port/db"; default DB 0)
// so that a test starts from nothing. When Redis does not answer it skips t with a hint — or fails
// it under CI=true.
func FlushDB(t testing.TB, redisURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Command(ctx, redisURL, "FLUSHDB")
	if err == nil {
		return
	}
	if _, dial := err.(dialError); dial {
		SkipOrFail(t, fmt.Sprintf("Redis is not reachable at %s (%v); start one with: redis-server --port 6379", redisURL, err))
	}
	t.Fatalf("djangotest: FLUSHDB on %s: %v", redisURL, err)
}

type dialError struct{ error }

// Command runs one Redis command (after SELECT of the URL's database) and checks that it did not
// answer with an error. It is enough for test set-up; the layers have real clients.
func Command(ctx context.Context, redisURL string, args ...string) error {
	u, err := url.Parse(redisURL)
	if err != nil || u.Scheme != "redis" {
		return fmt.Errorf("djangotest: %q is not a redis:// URL", redisURL)
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = "0"
	}
	if _, err := strconv.Atoi(db); err != nil {
		return fmt.Errorf("djangotest: bad database %q in %s", db, redisURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6379")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if err != nil {
		return dialError{err}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	w := bufio.NewWriter(conn)
	var cmds [][]string
	if pw, ok := u.User.Password(); ok {
		cmds = append(cmds, []string{"AUTH", pw})
	}
	cmds = append(cmds, []string{"SELECT", db}, args)
	for _, c := range cmds {
		fmt.Fprintf(w, "*%d\r\n", len(c))
		for _, a := range c {
			fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	for range cmds {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		switch line[0] {
		case '-':
			return fmt.Errorf("redis: %s", strings.TrimSpace(line[1:]))
		case '+', ':':
		default:
			return fmt.Errorf("djangotest: unexpected Redis reply %q (Command handles simple replies only)", strings.TrimSpace(line))
		}
	}
	return nil
}
