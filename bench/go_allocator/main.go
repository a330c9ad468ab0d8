// IPFS Cluster 1.1.6's balanced allocator (its Allocate alone), timed as bench/allocation.ts times
// ours: replication 3 among 100 peers with 3 metrics (tag:group in 5 groups, pinqueue, freespace).
// Run: cd bench/go_allocator && go run .
package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ipfs-cluster/ipfs-cluster/allocator/balanced"
	"github.com/ipfs-cluster/ipfs-cluster/api"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func main() {
	cfg := &balanced.Config{}
	cfg.Default()
	cfg.AllocateBy = []string{"tag:group", "pinqueue", "freespace"}
	alloc, err := balanced.New(cfg)
	if err != nil {
		panic(err)
	}
	expire := time.Now().Add(time.Hour).UnixNano()
	set := api.MetricsSet{}
	for i := 0; i < 100; i++ {
		_, pub, _ := crypto.GenerateEd25519Key(nil)
		p, _ := peer.IDFromPublicKey(pub)
		free := int64(1e12) + int64((i*7919)%1000)*1e9
		set["tag:group"] = append(set["tag:group"], api.Metric{Name: "tag:group", Peer: p, Value: fmt.Sprintf("g%d", i%5), Expire: expire, Valid: true, Partitionable: true})
		set["pinqueue"] = append(set["pinqueue"], api.Metric{Name: "pinqueue", Peer: p, Value: fmt.Sprint(i % 7), Expire: expire, Valid: true, Weight: -int64(i % 7)})
		set["freespace"] = append(set["freespace"], api.Metric{Name: "freespace", Peer: p, Value: fmt.Sprint(free), Expire: expire, Valid: true, Weight: free})
	}
	c, _ := api.DecodeCid("bafkqaaa")
	ctx := context.Background()
	for i := 0; i < 2000; i++ {
		alloc.Allocate(ctx, c, api.MetricsSet{}, set, api.MetricsSet{})
	}
	const runs = 20000
	ts := make([]float64, runs)
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		alloc.Allocate(ctx, c, api.MetricsSet{}, set, api.MetricsSet{})
		ts[i] = float64(time.Since(t0).Nanoseconds()) / 1000
	}
	sort.Float64s(ts)
	fmt.Printf("IPFS Cluster 1.1.6 balanced Allocate, 100 peers x 3 metrics, %d runs: median %.1f µs, p90 %.1f µs, p99 %.1f µs\n", runs, ts[runs/2], ts[runs*9/10], ts[runs*99/100])
}
