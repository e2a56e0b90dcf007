package kafka_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/medsettle/medsettle/adapters/kafka"
)

func TestDedupForgetsTheLeastRecentlySeen(t *testing.T) {
	d := kafka.NewDedup(2)
	require.True(t, d.First("a"))
	require.True(t, d.First("b"))
	require.False(t, d.First("a")) // a is now the most recent
	require.True(t, d.First("c"))  // evicts b
	require.Equal(t, 2, d.Len())
	require.False(t, d.First("a"))
	require.False(t, d.First("c"))
	require.True(t, d.First("b"), "b was forgotten")

	rec := &kgo.Record{Headers: []kgo.RecordHeader{{Key: kafka.HeaderEventID, Value: []byte("E1")}}}
	require.True(t, d.FirstRecord(rec))
	require.False(t, d.FirstRecord(rec))
	require.True(t, d.FirstRecord(&kgo.Record{}), "no event id: not a settlement event, passed on")
}
