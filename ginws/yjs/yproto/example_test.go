package yproto_test

import (
	"fmt"

	"ginws.dev/ginws/yjs/yproto"
)

// A server answers a client's sync step 1 with step 2, then frames live updates.
func ExampleDecode() {
	frame := yproto.AppendSyncStep1(nil, []byte{0}) // a client with an empty document
	m, err := yproto.Decode(frame)
	if err != nil {
		fmt.Println("bad frame:", err)
		return
	}
	if m.Type == yproto.MsgSync && m.SyncType == yproto.SyncStep1 {
		fmt.Printf("client state vector: %x\n", m.Payload)
	}
	reply := yproto.AppendSyncStep2(nil, []byte{0, 0}) // an empty update: nothing to send
	fmt.Printf("reply: %x\n", reply)
	// Output:
	// client state vector: 00
	// reply: 0001020000
}

func ExampleDecodeAwareness() {
	update := yproto.AppendAwarenessUpdate(nil, []yproto.AwarenessEntry{
		{ClientID: 42, Clock: 1, State: []byte(`{"user":{"name":"Ann"}}`)},
		{ClientID: 7, Clock: 5, State: []byte("null")},
	})
	entries, err := yproto.DecodeAwareness(update)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range entries {
		fmt.Println(e.ClientID, e.Clock, string(e.State), e.IsRemoval())
	}
	// Output:
	// 42 1 {"user":{"name":"Ann"}} false
	// 7 5 null true
}
