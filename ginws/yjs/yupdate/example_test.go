package yupdate_test

import (
	"encoding/hex"
	"fmt"

	"ginws.dev/ginws/yjs/yupdate"
)

// A room keeps its document as one merged update. A new update is validated before it is
// merged in; a client's sync step 1 (its state vector) is answered with a diff.
func Example() {
	// Two updates a Yjs client sent: "hello", then " world" (client 1).
	hello, _ := hex.DecodeString("01010100040101740568656c6c6f00")
	world, _ := hex.DecodeString("010101058401040620776f726c6400")

	doc := []byte{0, 0} // an empty document
	for _, u := range [][]byte{hello, world} {
		if err := yupdate.Validate(u); err != nil {
			fmt.Println("refused:", err)
			continue
		}
		doc, _ = yupdate.Merge(doc, u)
	}
	sv, _ := yupdate.StateVector(doc)
	state, _ := yupdate.DecodeStateVector(sv)
	fmt.Println("document state:", state)

	// A client that has seen "hello" (client 1 up to clock 5) gets only " world".
	missing, _ := yupdate.Diff(doc, yupdate.EncodeStateVector(map[uint64]uint64{1: 5}))
	fmt.Printf("diff: %x\n", missing)

	// Poison never enters the room.
	fmt.Println(yupdate.Validate([]byte{1, 1, 1, 0, 4, 1, 1, 't', 2, 0xff, 0xfe, 0}))
	// Output:
	// document state: map[1:11]
	// diff: 010101058401040620776f726c6400
	// yupdate: malformed update: struct 1:0: lib0: string is not valid UTF-8
}
