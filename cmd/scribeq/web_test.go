package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/web"
)

func TestWebAuthSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		addr, token, basic string
		none               bool
		want               web.Auth
		wantErr            string
	}{
		{name: "Token", addr: ":8080", token: " tok ", want: web.Auth{Token: "tok"}},
		{name: "Basic", addr: ":8080", basic: "ops:pa:ss", want: web.Auth{User: "ops", Password: "pa:ss"}},
		{name: "Both", addr: ":8080", token: "tok", basic: "ops:pw", want: web.Auth{Token: "tok", User: "ops", Password: "pw"}},
		{name: "NoneOnLoopback", addr: "127.0.0.1:8080", none: true, want: web.Auth{None: true}},
		{name: "NoneOnLocalhost", addr: "localhost:8080", none: true, want: web.Auth{None: true}},
		{name: "NoneOnIPv6Loopback", addr: "[::1]:8080", none: true, want: web.Auth{None: true}},
		{name: "NothingSet", addr: "127.0.0.1:8080", wantErr: "needs authentication"},
		{name: "NoneOnAllInterfaces", addr: ":8080", none: true, wantErr: "only allowed on a loopback address"},
		{name: "NoneOnPublicAddress", addr: "10.0.0.5:8080", none: true, wantErr: "only allowed on a loopback address"},
		{name: "NoneWithToken", addr: "127.0.0.1:8080", none: true, token: "tok", wantErr: "conflicts"},
		{name: "BasicWithoutPassword", addr: ":8080", basic: "ops:", wantErr: "USER:PASSWORD"},
		{name: "BasicWithoutColon", addr: ":8080", basic: "ops", wantErr: "USER:PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := webAuth(tt.addr, tt.token, tt.basic, tt.none)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "pa:ss")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

// serveWeb serves until its context ends, then returns without error.
func TestWebServeStopsWithContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveWeb(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "console")
		}), slog.New(slog.DiscardHandler))
	}()
	res, err := http.Get("http://" + ln.Addr().String() + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, "console", string(body))
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("serveWeb did not stop")
	}
}
