package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// jsDir is the npm workspace with yjs and @y/websocket-server, relative to this package.
var jsDir = filepath.Join("..", "..", "..", "ginws", "yjs", "testdata", "js")

// needNode returns the node binary, or skips (fails under CI=true) when node or the npm
// workspace is missing.
func needNode(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s; CI must provide it", what)
		}
		t.Skip(what)
	}
	const need = "needs Node 20+ and the pinned npm packages: run `npm ci` in ginws/yjs/testdata/js"
	node, err := exec.LookPath("node")
	if err != nil {
		missing(need + " (node is not on $PATH)")
	}
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "yjs")); err != nil {
		missing(need + " (yjs is not installed)")
	}
	return node
}

// runNode runs an ES module script given on stdin, resolving packages from the npm workspace.
func runNode(t *testing.T, script string) []byte {
	t.Helper()
	cmd := exec.Command(needNode(t), "--input-type=module")
	cmd.Dir = jsDir
	cmd.Stdin = bytes.NewBufferString(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	return out
}

// yjsScript types like the benchmark's editors, in real yjs, and reports each update, all of
// them merged, and the state of a document that applied them all.
const yjsScript = `
import * as Y from 'yjs'
const clients = [0x6b8b4567, 0x6b8b4568, 1, 300]
const out = { keystrokes: [], merged: '', state: '', text: '' }
const all = []
const sink = new Y.Doc()
for (const client of clients) {
  const d = new Y.Doc()
  d.clientID = client
  const t = d.getText('t')
  d.on('update', u => {
    all.push(u)
    Y.applyUpdate(sink, u)
    out.keystrokes.push({ client, k: t.length - 1, ch: t.toString().at(-1), hex: Buffer.from(u).toString('hex') })
  })
  for (let k = 0; k < 130; k++) t.insert(k, String.fromCharCode(97 + k % 26))
}
out.merged = Buffer.from(Y.mergeUpdates(all)).toString('hex')
out.state = Buffer.from(Y.encodeStateAsUpdate(sink)).toString('hex')
out.text = sink.getText('t').toString()
console.log(JSON.stringify(out))
`

// TestKeystrokesAreWhatYjsSends: the benchmark's updates equal real yjs output byte for byte,
// and the span parser reads single, merged and whole-document updates from real yjs correctly.
func TestKeystrokesAreWhatYjsSends(t *testing.T) {
	t.Parallel()
	var got struct {
		Keystrokes []struct {
			Client uint32
			K      uint64
			Ch     string
			Hex    string
		}
		Merged, State, Text string
	}
	if err := json.Unmarshal(runNode(t, yjsScript), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Keystrokes) != 4*130 || len(got.Text) != 4*130 {
		t.Fatalf("yjs produced %d updates, text of %d", len(got.Keystrokes), len(got.Text))
	}
	for _, ks := range got.Keystrokes {
		want, _ := hex.DecodeString(ks.Hex)
		msg := keystroke(ks.Client, ks.K, ks.Ch[0])
		r := reader{b: msg}
		typ, _ := r.uint()
		sub, _ := r.uint()
		update, err := r.bytes()
		if err != nil || typ != msgSync || sub != syncUpdate {
			t.Fatalf("frame %x: %d %d %v", msg, typ, sub, err)
		}
		if !bytes.Equal(update, want) {
			t.Fatalf("client %d keystroke %d: got %x, yjs sends %x", ks.Client, ks.K, update, want)
		}
		spans, err := updateSpans(nil, want)
		if err != nil || len(spans) != 1 || spans[0] != (span{uint64(ks.Client), ks.K, ks.K + 1}) {
			t.Fatalf("spans of %x: %v %v", want, spans, err)
		}
	}
	wantSpans := []span{{1, 0, 130}, {300, 0, 130}, {0x6b8b4567, 0, 130}, {0x6b8b4568, 0, 130}}
	for name, h := range map[string]string{"merged": got.Merged, "state": got.State} {
		b, _ := hex.DecodeString(h)
		spans, err := updateSpans(nil, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		slices.SortFunc(spans, func(a, b span) int { return int(a.client) - int(b.client) })
		if !slices.Equal(spans, wantSpans) {
			t.Fatalf("%s update spans %v, want %v", name, spans, wantSpans)
		}
	}
}

func TestUpdateSpansRejectsGarbage(t *testing.T) {
	t.Parallel()
	good := keystroke(firstClient, 3, 'x')[3:]
	for i := range len(good) - 1 {
		if _, err := updateSpans(nil, good[:i]); err == nil {
			t.Fatalf("truncated update %x accepted", good[:i])
		}
	}
	if _, err := updateSpans(nil, append(slices.Clone(good), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	bad := slices.Clone(good)
	bad[8] = 0x88 // a content type the editors never send
	if _, err := updateSpans(nil, bad); err == nil {
		t.Fatalf("unknown content accepted: %x", bad)
	}
}
