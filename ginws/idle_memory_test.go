package ginws

import (
	"net/http"
	"strings"
	"testing"
	"unsafe"
)

// TestConnSizeClass pins the size of Conn, allocated once per socket, below the 768-byte size
// class (issue 18 part 3: at 808 bytes it took 896 per idle socket). A field that few connections
// need belongs in connRare, which an idle connection does not allocate.
func TestConnSizeClass(t *testing.T) {
	const limit = 704
	if n := unsafe.Sizeof(Conn{}); n > limit {
		t.Fatalf("Conn is %d bytes, over %d: put rarely used fields in connRare", n, limit)
	}
}

// TestFlattenHeaderKeepsConstants checks that a Scope keeps the constant copy of the header keys
// and values every handshake carries, not the request's, and keeps other values as they are.
func TestFlattenHeaderKeepsConstants(t *testing.T) {
	fresh := func(s string) string { return strings.Clone(s) }
	h := http.Header{
		fresh("Sec-Websocket-Version"): {fresh("13")},
		fresh("Upgrade"):               {fresh("websocket")},
		fresh("Cookie"):                {fresh("sessionid=abc")},
	}
	flat := flattenHeader(h)
	if len(flat) != 6 {
		t.Fatalf("flattenHeader gave %q", flat)
	}
	for i := 0; i < len(flat); i += 2 {
		k, v := flat[i], flat[i+1]
		if c, ok := handshakeStrings[k]; !ok || unsafe.StringData(c) != unsafe.StringData(k) {
			if k != "Cookie" {
				t.Errorf("key %q is the request's copy, not the constant", k)
			}
		}
		c, ok := handshakeStrings[v]
		switch {
		case k == "Cookie" && (ok || v != "sessionid=abc"):
			t.Errorf("Cookie = %q (interned: %v)", v, ok)
		case k != "Cookie" && (!ok || unsafe.StringData(c) != unsafe.StringData(v)):
			t.Errorf("%s: value %q is the request's copy, not the constant", k, v)
		}
	}
}
