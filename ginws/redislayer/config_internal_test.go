package redislayer

import (
	"slices"
	"testing"
)

// A Sentinel host URL: the host and addr are sentinels, master_set names the master, the
// sentinels' password comes from sentinel_password, and logs never show a password.
func TestSentinelURL(t *testing.T) {
	host := "redis://:secret@10.0.0.1:26379/3?addr=10.0.0.2:26379&master_set=mymaster&sentinel_password=s3"
	opt, err := Config{}.withDefaults().clientOption(host)
	if err != nil {
		t.Fatal(err)
	}
	if opt.Sentinel.MasterSet != "mymaster" || opt.Sentinel.Password != "s3" || opt.Password != "secret" || opt.SelectDB != 3 ||
		!slices.Equal(opt.InitAddress, []string{"10.0.0.1:26379", "10.0.0.2:26379"}) || opt.Sentinel.TopologyRefreshInterval == 0 {
		t.Errorf("options: %+v", opt)
	}
	if got, want := redact(host), "redis://***@10.0.0.1:26379/3?addr=10.0.0.2:26379&master_set=mymaster&sentinel_password=***"; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}
