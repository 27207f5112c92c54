package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/metrics"
	"github.com/scribeq/scribeq/pkg/metrics/metricstest"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/pgtest"
	"github.com/scribeq/scribeq/pkg/queue"
)

type probe struct {
	code   int
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func get(t *testing.T, url string) probe {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var p probe
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	p.code = resp.StatusCode
	return p
}

func TestWorkerServer(t *testing.T) {
	t.Parallel()
	ns := natstest.Server(t)
	nc, err := queue.Connect(ns.ClientURL(), t.Name(), nil)
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	reg := metrics.NewRegistry()
	reg.Submitter().SetConcurrency(4)
	srv, err := metrics.Start("127.0.0.1:0", reg, nil)
	require.NoError(t, err)
	base := "http://" + srv.Addr()

	require.Equal(t, http.StatusOK, get(t, base+"/healthz").code)
	p := get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, p.code, "not ready before the worker has connected")
	require.Equal(t, "starting", p.Status)

	db := errors.New("postgres: connection refused")
	var dbDown bool
	srv.SetChecks(metrics.NATSCheck(nc), metrics.PingCheck("postgres", func(context.Context) error {
		if dbDown {
			return db
		}
		return nil
	}))
	p = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, p.code)
	require.Equal(t, map[string]string{"nats": "ok", "postgres": "ok"}, p.Checks)

	g := metricstest.Scrape(t, base+"/metrics")
	require.Equal(t, 4.0, metricstest.Value(t, g, "scribeq_submitter_convert_concurrency"))
	_, ok := metricstest.Sum(t, g, "go_goroutines")
	require.True(t, ok, "Go runtime metrics are served")

	ns.Shutdown()
	ns.WaitForShutdown()
	require.Eventually(t, func() bool { return get(t, base+"/readyz").code == http.StatusServiceUnavailable },
		10*time.Second, 10*time.Millisecond, "not ready once NATS is gone")
	p = get(t, base+"/readyz")
	require.Equal(t, "not ready", p.Status)
	require.Contains(t, p.Checks["nats"], "not connected")
	require.Equal(t, "ok", p.Checks["postgres"])
	require.Equal(t, http.StatusOK, get(t, base+"/healthz").code, "alive all the same: a restart would not bring NATS back")

	dbDown = true
	require.Equal(t, db.Error(), get(t, base+"/readyz").Checks["postgres"])

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	_, err = net.DialTimeout("tcp", srv.Addr(), time.Second)
	require.Error(t, err, "the port is closed after Shutdown")
}

func TestServerWithoutAddress(t *testing.T) {
	t.Parallel()
	srv, err := metrics.Start("", metrics.NewRegistry(), nil)
	require.NoError(t, err)
	require.Nil(t, srv)
	srv.SetChecks()
	require.Empty(t, srv.Addr())
	require.NoError(t, srv.Shutdown(context.Background()))
}

func TestServerAddressInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, err = metrics.Start(ln.Addr().String(), metrics.NewRegistry(), nil)
	require.ErrorContains(t, err, "metrics: listen on "+ln.Addr().String())
}

// The sink's readiness pings its real Postgres pool.
func TestReadyFollowsPostgres(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDB(t))
	require.NoError(t, err)
	srv, err := metrics.Start("127.0.0.1:0", metrics.NewRegistry(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	srv.SetChecks(metrics.PingCheck("postgres", pool.Ping))
	base := "http://" + srv.Addr()
	p := get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, p.code)
	require.Equal(t, "ok", p.Checks["postgres"])

	pool.Close()
	p = get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, p.code)
	require.NotEqual(t, "ok", p.Checks["postgres"])
}
