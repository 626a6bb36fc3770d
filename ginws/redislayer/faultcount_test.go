package redislayer_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"ginws.dev/ginws/layer"
	"ginws.dev/ginws/redislayer"
)

// Fault tests that count. Each runs a rig (two member processes of five subscribed channels in one
// group, and a sender group-sending every 5 ms), injects a fault into a Redis of its own, and
// counts every message: refused or failed (the sender was told), delivered, or lost in silence.
// The rules asserted are the README's "Delivery guarantees":
//   - before the fault and after recovery (every Layer's Health nil again), every send succeeds and
//     reaches every member exactly once;
//   - a send that started after Redis answered again either fails or reaches every member;
//   - what is lost in silence was acknowledged by a Redis that then died (queued in its process key,
//     or not yet replicated), never a message sent after it came back.

// logTimes reports how long recovery took, from back (Redis answering again).
func logTimes(t *testing.T, r *faultRig, backAt, recoveredAt time.Time, restored []time.Time, fromSeq int) {
	t.Helper()
	var rs []string
	for _, at := range restored {
		rs = append(rs, at.Sub(backAt).Round(time.Millisecond).String())
	}
	var fd []string
	for _, at := range r.firstDeliveries(fromSeq) {
		fd = append(fd, at.Sub(backAt).Round(time.Millisecond).String())
	}
	t.Logf("from Redis back: memberships re-added by each member process after %s; every Layer healthy after %v; first delivery of a message sent after Redis was back, per process, after %s",
		strings.Join(rs, ", "), recoveredAt.Sub(backAt).Round(time.Millisecond), strings.Join(fd, ", "))
}

// checkSilentLoss asserts that every message lost in silence during the fault was acknowledged
// before deadAt (when the Redis that held it was dead), and reports them.
func checkSilentLoss(t *testing.T, r *faultRig, rep faultReport, deadAt time.Time, what string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, seq := range rep.lostDuring {
		if s := r.sends[seq]; s.end.After(deadAt) {
			t.Errorf("message %d was sent at +%v after %s and lost in silence", seq, s.start.Sub(deadAt), what)
		}
	}
	t.Logf("messages lost in silence during the fault (acknowledged by the Redis %s): %d", what, len(rep.lostDuring))
}

// Redis is killed (SIGKILL) and restarted empty on the same port, as a Redis without persistence
// comes back: every membership is gone, and the member processes must re-add theirs.
func TestFaultRedisKilled(t *testing.T) {
	srv := startRedis(t)
	r := newFaultRig(t, rigConfig([]string{srv.url(0)}, testPrefix()), 2, 5)
	r.startSending()
	time.Sleep(time.Second)
	deg, readded := r.degradations(), r.readded()
	faultSeq := r.settledCount(5 * time.Second)
	faultAt := time.Now()
	srv.kill()
	deadAt := time.Now()
	r.waitDegraded(deg, 5*time.Second)
	time.Sleep(time.Second)
	srv.restart()
	backAt := time.Now()
	recoveredAt, restored := r.waitRecovered(15*time.Second, readded)
	time.Sleep(1500 * time.Millisecond)
	r.stopSending()
	r.settle(r.seqAt(recoveredAt), 5*time.Second)

	rep := r.report(faultSeq, recoveredAt)
	t.Logf("Redis killed for %v, restarted empty:\n%v", backAt.Sub(faultAt).Round(time.Millisecond), rep)
	logTimes(t, r, backAt, recoveredAt, restored, r.seqAt(backAt))
	r.checkRules(rep)
	checkSilentLoss(t, r, rep, deadAt, "that was killed")
	if n := r.missingFrom(r.seqAt(backAt)); n != 0 {
		t.Errorf("%d member deliveries missing of messages sent without error after Redis was back", n)
	}
	for i, p := range r.procs {
		if st := p.l.Stats(); st.Readded < 5 || st.Memberships != 5 {
			t.Errorf("process %d: Readded %d, Memberships %d; want ≥ 5 and 5", i, st.Readded, st.Memberships)
		}
	}
	if st := r.sender.Stats(); st.GroupSendsRefused == 0 || st.Degradations == 0 || st.DegradedFor == 0 {
		t.Errorf("the sender's Stats do not show the fault: %+v", st)
	}
}

// Redis stops answering for 3 s (DEBUG SLEEP) while CallTimeout is 1 s: calls time out, the layers
// are degraded, and nothing is lost in silence since Redis keeps its data.
func TestFaultRedisPaused(t *testing.T) {
	srv := startRedis(t)
	r := newFaultRig(t, rigConfig([]string{srv.url(0)}, testPrefix()), 2, 5)
	r.startSending()
	time.Sleep(time.Second)
	deg, readded := r.degradations(), r.readded()
	faultSeq := r.settledCount(5 * time.Second)
	faultAt := time.Now()
	back := srv.pause(3 * time.Second)
	r.waitDegraded(deg, 5*time.Second)
	backAt := <-back
	recoveredAt, restored := r.waitRecovered(15*time.Second, readded)
	time.Sleep(1500 * time.Millisecond)
	r.stopSending()
	r.settle(r.seqAt(recoveredAt), 5*time.Second)

	rep := r.report(faultSeq, recoveredAt)
	t.Logf("Redis paused (DEBUG SLEEP) for %v:\n%v", backAt.Sub(faultAt).Round(time.Millisecond), rep)
	logTimes(t, r, backAt, recoveredAt, restored, r.seqAt(backAt))
	r.checkRules(rep)
	if rep.during.lost != 0 {
		t.Errorf("%d member deliveries lost in silence during the pause (messages %v); Redis kept its data, so none may be", rep.during.lost, rep.lostDuring)
	}
	if rep.during.refused+rep.during.failed == 0 {
		t.Error("no send failed during a 3 s pause with CallTimeout 1 s")
	}
}

// Sentinel failover: a master, a replica and three sentinels (quorum 2). The master is killed;
// the sentinels promote the replica; the layers follow it (rueidis follows +switch-master) and
// re-add their memberships, and every member receives every message sent after the promotion.
func TestFaultSentinelFailover(t *testing.T) {
	master := startRedis(t)
	replica := startRedis(t, "--replicaof", "127.0.0.1", fmt.Sprint(master.port))
	waitReplicaSynced(t, replica)
	var sentinels []*redisProc
	for i := 0; i < 3; i++ {
		sentinels = append(sentinels, startSentinel(t, master.port, 2))
	}
	waitSentinels(t, sentinels, 20*time.Second)
	url := fmt.Sprintf("redis://%s/0?addr=%s&addr=%s&master_set=mymaster", sentinels[0].addr(), sentinels[1].addr(), sentinels[2].addr())

	r := newFaultRig(t, rigConfig([]string{url}, testPrefix()), 2, 5)
	r.startSending()
	time.Sleep(time.Second)
	deg, readded := r.degradations(), r.readded()
	faultSeq := r.settledCount(5 * time.Second)
	faultAt := time.Now()
	master.kill()
	deadAt := time.Now()
	r.waitDegraded(deg, 5*time.Second)
	newPort := waitMaster(t, sentinels[0], master.port, 30*time.Second)
	promotedAt := time.Now()
	if newPort != replica.port {
		t.Fatalf("the sentinels promoted port %d, want the replica's %d", newPort, replica.port)
	}
	recoveredAt, restored := r.waitRecovered(30*time.Second, readded)
	time.Sleep(1500 * time.Millisecond)
	r.stopSending()
	r.settle(r.seqAt(recoveredAt), 5*time.Second)

	rep := r.report(faultSeq, recoveredAt)
	t.Logf("master killed; replica promoted after %v:\n%v", promotedAt.Sub(faultAt).Round(time.Millisecond), rep)
	logTimes(t, r, promotedAt, recoveredAt, restored, r.seqAt(promotedAt))
	r.checkRules(rep)
	checkSilentLoss(t, r, rep, deadAt, "master that was killed")
	if n := r.missingFrom(r.seqAt(recoveredAt)); n != 0 {
		t.Errorf("%d member deliveries missing of messages sent after the promotion", n)
	}
}

// waitSentinels waits until every sentinel knows the replica and the other sentinels, so that
// they can agree on a failover.
func waitSentinels(t *testing.T, sentinels []*redisProc, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for _, s := range sentinels {
		c := s.client()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			fields, err := c.Do(ctx, c.B().Arbitrary("SENTINEL", "master", "mymaster").Build()).AsStrMap()
			cancel()
			if fields["num-other-sentinels"] == fmt.Sprint(len(sentinels)-1) && fields["num-slaves"] == "1" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel %s: %v %v", s.addr(), fields, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// helperEnv carries the member process's configuration to the test binary run as that process
// (see TestMain).
const helperEnv = "REDISLAYER_FAULT_HELPER"

// runFaultHelper is a member process for TestFaultProcessKilled: it joins n subscribed channels to
// a group, prints "ready", and waits to be killed.
func runFaultHelper(spec string) int {
	var url, prefix, group string
	var n int
	var groupExpiry time.Duration
	if _, err := fmt.Sscan(spec, &url, &prefix, &group, &n, &groupExpiry); err != nil {
		fmt.Fprintln(os.Stderr, "bad", helperEnv, err)
		return 2
	}
	l, err := redislayer.New(redislayer.Config{Hosts: []string{url}, Prefix: prefix, GroupExpiry: groupExpiry, Expiry: groupExpiry})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	for i := 0; i < n; i++ {
		ch, _ := l.NewChannel(ctx, "")
		if _, err := l.Subscribe(ch, func(*layer.Envelope) error { return nil }); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := l.GroupAdd(ctx, group, ch); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("ready")
	time.Sleep(2 * time.Minute) // killed long before
	return 0
}

// A member process is killed with SIGKILL: it never leaves its groups. The survivors keep
// receiving every message; the dead process's memberships expire within GroupExpiry (2 s here),
// as in Channels, while the live ones — older than GroupExpiry by the end — are kept by refresh.
func TestFaultProcessKilled(t *testing.T) {
	srv := startRedis(t)
	const groupExpiry = 2 * time.Second
	prefix := testPrefix()
	cfg := rigConfig([]string{srv.url(0)}, prefix)
	cfg.GroupExpiry, cfg.Expiry = groupExpiry, groupExpiry
	r := newFaultRig(t, cfg, 1, 5)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %s %d %s", helperEnv, srv.url(0), prefix, r.group, 5, groupExpiry))
	cmd.Stderr = os.Stderr
	dieWithTest(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the helper process did not get ready")
	}
	c := srv.client()
	groupKey := prefix + ":group:" + r.group
	members := func() int64 {
		n, err := c.Do(ctxT(t), c.B().Zcard().Key(groupKey).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := members(); n != 10 {
		t.Fatalf("group has %d members, want 10", n)
	}

	r.startSending()
	time.Sleep(time.Second)
	killAt := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	var goneAfter time.Duration
	for deadline := time.Now().Add(groupExpiry + 2*time.Second); ; {
		if n := members(); n == 5 {
			goneAfter = time.Since(killAt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead process's memberships still there %v after the kill (%d members)", time.Since(killAt), members())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * groupExpiry) // the survivors' memberships outlive GroupExpiry by refresh
	r.stopSending()
	sentAfterKill := r.nextSeq() - r.seqAt(killAt)
	r.settle(0, 5*time.Second)

	rep := r.report(r.seqAt(killAt), killAt)
	t.Logf("member process SIGKILLed; its memberships gone %v after (GroupExpiry %v); %d messages sent after the kill missed its 5 members (nobody to deliver to)\nsurvivors: %v",
		goneAfter.Round(time.Millisecond), groupExpiry, sentAfterKill, rep)
	r.checkRules(rep)
	if n := members(); n != 5 {
		t.Errorf("group has %d members at the end, want the 5 survivors", n)
	}
	if st := r.procs[0].l.Stats(); st.Refreshed == 0 {
		t.Errorf("Refreshed = 0 after %v with GroupExpiry %v", time.Since(killAt), groupExpiry)
	}
	if st := r.sender.Stats(); st.Degradations != 0 {
		t.Errorf("a member process's death degraded the sender: %+v", st)
	}
}
