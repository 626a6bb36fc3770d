package yupdate_test

import (
	"errors"
	"strings"
	"testing"

	"ginws.dev/ginws/yjs/internal/jstest"
	"ginws.dev/ginws/yjs/yupdate"
)

// The reviewer's poison update: one string "x" in root "t" from client 2^64-1. Yjs throws
// "Integer out of Range" reading it, so a server that admitted it would make the document
// unreadable for every client.
const poisonHex = "0101" + "ffffffffffffffffff01" + "00" + "04" + "0101" + "74" + "0178" + "00"

// The same update from client 2^53-1 (Number.MAX_SAFE_INTEGER), which Yjs reads.
const safeHex = "0101" + "ffffffffffffff0f" + "00" + "04" + "0101" + "74" + "0178" + "00"

func TestIntegersBeyondJavaScriptAreMalformed(t *testing.T) {
	t.Parallel()
	poison, safe := jstest.Unhex(t, poisonHex), jstest.Unhex(t, safeHex)
	if err := yupdate.Validate(poison); !errors.Is(err, yupdate.ErrMalformed) {
		t.Fatalf("Validate(poison) = %v, want ErrMalformed", err)
	}
	if _, err := yupdate.Merge(poison, safe); !errors.Is(err, yupdate.ErrMalformed) {
		t.Errorf("Merge(poison, safe) = %v", err)
	}
	if _, err := yupdate.StateVector(poison); !errors.Is(err, yupdate.ErrMalformed) {
		t.Errorf("StateVector(poison) = %v", err)
	}
	if _, err := yupdate.Diff(safe, jstest.Unhex(t, "01"+"ffffffffffffffffff01"+"00")); !errors.Is(err, yupdate.ErrMalformed) {
		t.Errorf("Diff against a state vector naming client 2^64-1 = %v", err)
	}
	if err := yupdate.Validate(safe); err != nil {
		t.Fatalf("Validate(client 2^53-1) = %v", err)
	}
}

// What Go refuses, yjs cannot read; what Go accepts at the edge, yjs reads.
func TestIntegersBeyondJavaScriptWithYjs(t *testing.T) {
	t.Parallel()
	roots := map[string]string{"t": "text"}
	results := checkWithYjs(t, []checkCase{
		{Name: "client 2^53-1", Roots: roots, Candidate: []string{safeHex}, Expect: []string{safeHex}},
		{Name: "client 2^64-1", Roots: roots, Candidate: []string{poisonHex}},
	})
	if !results[0].OK {
		t.Errorf("yjs did not read client 2^53-1: %+v", results[0])
	}
	if results[1].OK || !strings.Contains(results[1].Error, "Integer out of Range") {
		t.Errorf("yjs read client 2^64-1 (%+v): the Go refusal would be unnecessary", results[1])
	}
}
