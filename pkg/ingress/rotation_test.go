package ingress_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/ingress"
	"github.com/scribeq/scribeq/pkg/natstest"
	"github.com/scribeq/scribeq/pkg/queue"
)

// The documented rotation, one ingress restart per step: while ElevenLabs
// may sign with either secret both are accepted, and once the old one is
// removed it is refused.
func TestSecretRotation(t *testing.T) {
	t.Parallel()
	q := natstest.Queue(t, queue.Config{})
	const oldSecret, newSecret = "whsec_before_rotation", "whsec_after_rotation"
	run := func(secrets ...string) string {
		h, err := ingress.New(q, ingress.Config{Secrets: secrets})
		require.NoError(t, err)
		srv := httptest.NewServer(h)
		t.Cleanup(func() {
			srv.Close()
			require.NoError(t, h.Close())
		})
		return srv.URL + "/webhooks/elevenlabs"
	}
	n := 0
	deliver := func(url, secret string) int {
		n++
		id := "rot-" + string(rune('a'+n))
		payload := body(id, `{"job_id":"`+id+`"}`, "rotation")
		return post(t, url, payload, elevenlabs.Sign(secret, time.Now(), payload))
	}

	// 1. Before: only the old secret exists.
	url := run(oldSecret)
	require.Equal(t, http.StatusOK, deliver(url, oldSecret))
	require.Equal(t, http.StatusUnauthorized, deliver(url, newSecret))

	// 2. The new secret is added in front (SCRIBEQ_WEBHOOK_SECRETS=new,old)
	// before it is switched on in ElevenLabs: deliveries signed with
	// either are stored.
	url = run(newSecret, oldSecret)
	require.Equal(t, http.StatusOK, deliver(url, oldSecret))
	require.Equal(t, http.StatusOK, deliver(url, newSecret))

	// 3. After: the old secret removed, anything signed with it is refused.
	url = run(newSecret)
	require.Equal(t, http.StatusOK, deliver(url, newSecret))
	require.Equal(t, http.StatusUnauthorized, deliver(url, oldSecret))

	require.Len(t, events(t, q), 4, "exactly the accepted deliveries were stored")
}
