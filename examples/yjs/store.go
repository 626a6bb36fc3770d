package main

import (
	"fmt"
	"net/url"
	"strings"

	"ginws.dev/ginws/yjs/ystore"

	"github.com/redis/rueidis"

	"ginws.dev/ginws/yjs/redisstore"
)

// storeUsage describes the -store flag.
const storeUsage = `where documents are kept: "memory" (per process), or "redis://host:port/db[?prefix=ginws:yjs:]"`

// parseStore turns the -store flag into a document store and the function that releases it.
func parseStore(spec string) (ystore.Store, func(), error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "memory" {
		return ystore.NewMemory(), func() {}, nil
	}
	u, err := url.Parse(spec)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return nil, nil, fmt.Errorf("-store %q: want \"memory\" or a redis:// URL", spec)
	}
	q := u.Query()
	prefix := q.Get("prefix")
	q.Del("prefix")
	u.RawQuery = q.Encode()
	opt, err := rueidis.ParseURL(u.String())
	if err != nil {
		return nil, nil, fmt.Errorf("-store: %w", err)
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, nil, fmt.Errorf("-store: connecting to %s: %w", u.Host, err)
	}
	return redisstore.New(client, prefix), client.Close, nil
}
