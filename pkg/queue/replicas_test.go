package queue_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/queue"
)

// One process started with the default replica count against a cluster must
// not scale every stream down to a single copy.
func TestOpenNeverLowersReplicas(t *testing.T) {
	urls := cluster(t, 3)
	ctx := context.Background()

	open := func(replicas int) *queue.Queue {
		t.Helper()
		nc, err := queue.Connect(strings.Join(urls, ","), t.Name(), nil)
		require.NoError(t, err)
		var q *queue.Queue
		// The cluster elects its JetStream leader after the routes connect.
		deadline := time.Now().Add(30 * time.Second)
		for {
			q, err = queue.Open(ctx, nc, queue.Config{Replicas: replicas})
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		require.NoError(t, err)
		t.Cleanup(q.Close)
		return q
	}
	open(3)
	q := open(0) // the default, 1

	for _, name := range []string{event.StreamJobs, event.StreamEvents, "OBJ_" + event.BucketAudio, "KV_" + event.BucketSlots} {
		s, err := q.JS.Stream(ctx, name)
		require.NoError(t, err)
		require.Equal(t, 3, s.CachedInfo().Config.Replicas, "stream %s", name)
	}
}

// cluster starts n JetStream servers routed to each other and returns their
// client URLs.
func cluster(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ports[i] = l.Addr().(*net.TCPAddr).Port
		require.NoError(t, l.Close())
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	var urls []string
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "scribeq", Host: "127.0.0.1", Port: ports[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:      true,
			NoSigs:     true,
		}
		s, err := server.NewServer(opts)
		require.NoError(t, err)
		go s.Start()
		require.True(t, s.ReadyForConnections(10*time.Second), "server %d did not start", i)
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		urls = append(urls, s.ClientURL())
	}
	return urls
}
