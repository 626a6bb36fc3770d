package ginws

import (
	"testing"

	"ginws.dev/ginws/layer"
)

func TestSameMap(t *testing.T) {
	a := layer.Message{"type": "x"}
	b := layer.Message{"type": "x"}
	if !sameMap(a, a) || sameMap(a, b) || sameMap(a, nil) || !sameMap(nil, nil) {
		t.Fatal("sameMap must compare identity, not contents")
	}
}
