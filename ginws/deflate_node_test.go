package ginws_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"ginws.dev/ginws"
	"ginws.dev/ginws/layer"
)

// nodeWorkspace is the npm workspace with node's ws installed (the Yjs interop tests' one).
var nodeWorkspace, _ = filepath.Abs(filepath.Join("yjs", "testdata", "js"))

// needNodeWS returns the node binary, or skips the test when Node or the npm packages are missing —
// failing it instead under CI=true (as the Yjs interop tests do).
func needNodeWS(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(nodeWorkspace, "node_modules", "ws", "package.json"))
	}
	if err != nil {
		msg := "needs Node 20+ and the pinned npm packages: run `npm ci` in ginws/yjs/testdata/js (" + err.Error() + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return node
}

// Node's ws client with perMessageDeflate (threshold 0: it compresses everything it sends) against
// an echo endpoint and a group of members, all with WithCompression: without context takeover, and
// with it (ws offers takeover both ways, and takes it).
func TestCompressionNodeWS(t *testing.T) {
	t.Parallel()
	node := needNodeWS(t)
	for _, c := range []struct {
		name, response string
		cfg            ginws.Compression
	}{
		{"no takeover", pmdResponse, ginws.Compression{}},
		{"takeover", "permessage-deflate", ginws.Compression{ContextTakeover: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nodeWSDeflate(t, node, c.cfg, c.response)
		})
	}
}

func nodeWSDeflate(t *testing.T, node string, cfg ginws.Compression, response string) {
	lay := layer.NewMemory(layer.MemoryConfig{})
	compress := ginws.WithCompression(cfg)
	a := newApp(t, ginws.Config{Layer: lay}, func() ginws.Consumer {
		return consumer(funcConsumer{
			groups: func(c *funcConsumer) []string {
				if c.Scope().Param("room") == "group" {
					return []string{"room"}
				}
				return nil
			},
			events:  func(*funcConsumer) ginws.Events { return ginws.Events{"chat.message": pmdRelay} },
			connect: acceptWith(compress),
			receive: func(ctx context.Context, c *funcConsumer, f ginws.ClientMessage) error {
				if c.Scope().Param("room") == "group" {
					var in struct{ Text string }
					if err := json.Unmarshal(f.Data, &in); err != nil {
						return err
					}
					return c.GroupSend(ctx, "room", layer.Message{"type": "chat.message", "text": in.Text})
				}
				if f.Binary {
					return c.SendBinary(f.Data)
				}
				return c.SendText(string(f.Data))
			},
		})()
	})
	args, _ := json.Marshal(map[string]any{"echo": a.ts.WSURL("/ws/echo"), "group": a.ts.WSURL("/ws/group"), "origin": a.ts.URL, "members": 4})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "ws_deflate.mjs"), nodeWorkspace, string(args))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var out struct {
		Extensions string
		Echo       []bool
		Group      []bool
		Error      string
	}
	if jerr := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil || jerr != nil || out.Error != "" {
		t.Fatalf("node: %v %v\nstdout: %s\nstderr: %s", err, jerr, stdout.String(), stderr.String())
	}
	if out.Extensions != response {
		t.Errorf("ws negotiated %q, want %q", out.Extensions, response)
	}
	for i, ok := range out.Echo {
		if !ok {
			t.Errorf("echo %d differs", i)
		}
	}
	if len(out.Echo) != 7 || len(out.Group) != 4 {
		t.Errorf("echoes %v, group deliveries %v", out.Echo, out.Group)
	}
	for i, ok := range out.Group {
		if !ok {
			t.Errorf("group member %d got a different message", i)
		}
	}
}
