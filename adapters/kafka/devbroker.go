package kafka

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Partitions of the topics StartDevBroker creates.
const (
	DevSettlementPartitions = 8
	DevClaimPartitions      = 4
)

// StartDevBroker runs an in-process Kafka broker (kfake: the Kafka protocol,
// in memory, with idempotent producers, transactions and consumer groups)
// on 127.0.0.1:port (0: any free port), with the settlement and claim
// topics created. It stops when stop is called or ctx ends. For `medsettle
// dev` and tests only: nothing it holds survives it.
func StartDevBroker(ctx context.Context, port int) (addrs []string, stop func(), err error) {
	c, err := kfake.NewCluster(
		kfake.Ports(port),
		kfake.ClusterID("medsettle-dev"),
		kfake.SeedTopics(DevSettlementPartitions, TopicSettlements),
		kfake.SeedTopics(DevClaimPartitions, TopicClaims, TopicClaimResults, TopicClaimsDLQ, MonitorAlertsTopic),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka: starting the dev broker on port %d: %w", port, err)
	}
	var once sync.Once
	done := make(chan struct{})
	stop = func() {
		once.Do(func() {
			close(done)
			c.Close()
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-done:
		}
	}()
	return c.ListenAddrs(), stop, nil
}
