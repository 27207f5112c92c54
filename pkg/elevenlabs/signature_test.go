package elevenlabs_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/elevenlabs"
)

// Computed outside Go, exactly as the official SDKs compute v0:
//
//	printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
//	printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac old-secret
const (
	vectorSecretHex    = "49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
	vectorOldSecretHex = "e29ca811af373f1279f2b539116c71422ef13c442c1d2e1ce1f372109610a6b0"
)

func TestSignMatchesOpenSSLVector(t *testing.T) {
	t.Parallel()
	got := elevenlabs.Sign("secret", time.Unix(1700000000, 0), []byte(`{"a":1}`))
	require.Equal(t, "t=1700000000,v0="+vectorSecretHex, got)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	sign := func(secret string, at time.Time) string { return elevenlabs.Sign(secret, at, body) }

	tests := []struct {
		name    string
		secrets []string
		header  string
		body    []byte
		want    error
	}{
		{name: "Valid", header: sign("secret", now)},
		{name: "FixedVector", header: "t=1700000000,v0=" + vectorSecretHex},
		{name: "SpaceAfterComma", header: "t=1700000000, v0=" + vectorSecretHex},
		{name: "TamperedBody", header: sign("secret", now), body: []byte(`{"a":2}`), want: elevenlabs.ErrSignatureInvalid},
		{name: "WrongSecret", header: sign("not-the-secret", now), want: elevenlabs.ErrSignatureInvalid},
		{name: "MissingHeader", header: "", want: elevenlabs.ErrMissingSignature},
		{name: "V1Only", header: "t=1700000000,v1=" + vectorSecretHex, want: elevenlabs.ErrNoV0Signature},
		{name: "V0NotHex", header: "t=1700000000,v0=zz", want: elevenlabs.ErrNoV0Signature},
		{name: "Stale", header: sign("secret", now.Add(-31*time.Minute)), want: elevenlabs.ErrStaleSignature},
		{name: "OldButInsideTolerance", header: sign("secret", now.Add(-29*time.Minute))},
		{name: "Future", header: sign("secret", now.Add(6*time.Minute)), want: elevenlabs.ErrFutureSignature},
		{name: "SlightlyAhead", header: sign("secret", now.Add(4*time.Minute))},
		{
			name:   "SeveralV0OneValid",
			header: "t=1700000000,v0=" + vectorOldSecretHex + ",v0=" + vectorSecretHex + ",v0=00ff",
		},
		{
			name:    "RotationOldSecretMatches",
			secrets: []string{"new-secret", "old-secret"},
			header:  "t=1700000000,v0=" + vectorOldSecretHex,
		},
		{
			name:    "RotationNeitherMatches",
			secrets: []string{"new-secret", "old-secret"},
			header:  sign("secret", now),
			want:    elevenlabs.ErrSignatureInvalid,
		},
		{name: "MalformedT", header: "t=17000000x0,v0=" + vectorSecretHex, want: elevenlabs.ErrBadTimestamp},
		{name: "MissingT", header: "v0=" + vectorSecretHex, want: elevenlabs.ErrBadTimestamp},
		{name: "NoSecrets", secrets: []string{}, header: sign("secret", now), want: elevenlabs.ErrNoSecrets},
		{
			// An unset secret must not turn into "anyone may sign with the empty key".
			name:    "EmptySecretIsNotASecret",
			secrets: []string{""},
			header:  sign("", now),
			want:    elevenlabs.ErrNoSecrets,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secrets := tt.secrets
			if secrets == nil {
				secrets = []string{"secret"}
			}
			b := tt.body
			if b == nil {
				b = body
			}
			v := &elevenlabs.Verifier{Secrets: secrets, Now: func() time.Time { return now }}
			err := v.Verify(tt.header, b)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.want)
		})
	}
}
