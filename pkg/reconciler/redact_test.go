package reconciler_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/emulator"
	"github.com/scribeq/scribeq/pkg/logtest"
	"github.com/scribeq/scribeq/pkg/queue"
	"github.com/scribeq/scribeq/pkg/reconciler"
)

const canaryKey = "sk_Qz4Pw8Nv2XsT6mB1cR7"

// The reconciler's transcript fetches fail in every way they can; the API
// key appears in no log line, no error and nothing published, and each
// line names the job it is about.
func TestAPIKeyNeverLeaksFromReconciler(t *testing.T) {
	t.Parallel()
	b := setup(t, queue.Config{})
	b.submitted(t, "j-canary", "r-canary", "tr-canary", 3*time.Hour, 30)

	rejecting, err := emulator.New(emulator.Config{APIKeys: []string{"sk_only_this_key"}})
	require.NoError(t, err)
	rejectSrv := httptest.NewServer(rejecting.Handler())
	t.Cleanup(rejectSrv.Close)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("xi-api-key")
		w.Header().Set("request-id", key)
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, `{"detail":{"message":"bad key %s","code":"%s"}}`, key, key)
	}))
	t.Cleanup(echo.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	tests := []struct {
		name, base, msg string
	}{
		{"KeyRejected", rejectSrv.URL, "ElevenLabs refused the API key; check ELEVENLABS_API_KEY. Stopping this round"},
		{"ErrorBodyEchoesKey", echo.URL, "could not fetch transcript; trying again next round"},
		{"ConnectionRefused", refused, "could not fetch transcript; trying again next round"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := logtest.New()
			api, err := elevenlabs.New(elevenlabs.Config{BaseURL: tt.base, APIKey: canaryKey})
			require.NoError(t, err)
			r := b.reconciler(t, api, reconciler.Config{Logger: logs.Logger()})
			res, err := r.Round(context.Background())
			require.NoError(t, err)
			require.Equal(t, 1, res.Stuck)
			require.True(t, logs.Has(t, tt.msg, "job_id", "j-canary", "request_id", "r-canary", "transcription_id", "tr-canary"),
				"%s", logs.String())
			var published string
			for _, s := range b.events(t) {
				published += fmt.Sprintf("%s %+v\n", s.msgID, *s.ev)
			}
			logtest.RequireAbsent(t, "reconciler logs", logs.String(), canaryKey)
			logtest.RequireAbsent(t, "published events", published, canaryKey)
		})
	}
}
