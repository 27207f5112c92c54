package elevenlabs_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
	"github.com/scribeq/scribeq/pkg/logtest"
)

const (
	redactKey    = "sk_Wd3Fh8Jq2Lx6Tn9Bv4Mz"
	redactSecret = "whsec_Yg5Kp1Rc7Ns4Qa8Dw2"
)

// Printing or logging a Config, a Client or a Verifier, in any format,
// shows neither the key nor the secrets.
func TestConfigsPrintRedacted(t *testing.T) {
	t.Parallel()
	cfg := elevenlabs.Config{BaseURL: "https://api.elevenlabs.io", APIKey: redactKey}
	c, err := elevenlabs.New(cfg)
	require.NoError(t, err)
	v := elevenlabs.Verifier{Secrets: []string{redactSecret, "whsec_other"}}

	var out strings.Builder
	for _, x := range []any{cfg, &cfg, c, v, &v} {
		fmt.Fprintf(&out, "%v|%+v|%#v|%s\n", x, x, x, x)
	}
	logs := logtest.New()
	logs.Logger().Info("configured", "config", cfg, "config_ptr", &cfg, "client", c, "verifier", v, "verifier_ptr", &v)

	require.Contains(t, out.String(), "[redacted]", "a set key shows as set")
	require.Contains(t, out.String(), "https://api.elevenlabs.io", "and the rest stays readable")
	require.Contains(t, out.String(), "Secrets:2")
	require.True(t, logs.Has(t, "configured"))
	logtest.RequireAbsent(t, "printed", out.String(), redactKey, redactSecret)
	logtest.RequireAbsent(t, "logged", logs.String(), redactKey, redactSecret)

	require.Contains(t, fmt.Sprint(elevenlabs.Config{}), `APIKey:""`, "an unset key shows as unset")
}

// Transport failures name the URL called, which holds no key, and drop a
// password from the base URL; a base URL that is not one is not echoed
// (a key pasted into the wrong variable would be).
func TestTransportErrorsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	c, err := elevenlabs.New(elevenlabs.Config{BaseURL: "http://scribeq:" + redactSecret + "@" + addr, APIKey: redactKey})
	require.NoError(t, err)
	var errs strings.Builder
	_, err = c.GetTranscript(context.Background(), "tr_1")
	require.Error(t, err)
	fmt.Fprintf(&errs, "%v\n%+v\n", err, err)
	require.Contains(t, err.Error(), "connection refused")
	err = c.DeleteTranscript(context.Background(), "tr_1")
	require.Error(t, err)
	fmt.Fprintln(&errs, err)

	for _, bad := range []string{redactKey, "ftp://" + redactKey, "http://[" + redactKey, "https://user:" + redactSecret + "@"} {
		_, err := elevenlabs.New(elevenlabs.Config{BaseURL: bad, APIKey: redactKey})
		require.ErrorContains(t, err, "BaseURL", bad)
		fmt.Fprintln(&errs, err)
	}
	_, err = elevenlabs.New(elevenlabs.Config{BaseURL: "http://example.com", HTTPClient: &http.Client{}})
	require.ErrorContains(t, err, "APIKey")
	logtest.RequireAbsent(t, "errors", errs.String(), redactKey, redactSecret)
}
