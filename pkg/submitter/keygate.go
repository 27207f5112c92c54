package submitter

import (
	"sync"
	"time"
)

// keyGate stops every convert call of this process while ElevenLabs rejects
// the API key (401/403). A wrong key would fail each job it touched, so jobs
// stay queued instead; after a pause one call at a time probes the key, the
// pause doubling up to maxKeyPause while the key stays wrong.
type keyGate struct {
	base time.Duration

	mu       sync.Mutex
	until    time.Time // no calls before this
	rejected int       // consecutive rejections; 0 while the key works
	probing  bool      // one call is testing the key
}

const maxKeyPause = 5 * time.Minute

// admit says how long a call must wait; 0 lets it go. While the key is
// rejected only one call at a time is let through, and that call must be
// followed by settle.
func (g *keyGate) admit() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d := time.Until(g.until); d > 0 {
		return d
	}
	if g.rejected == 0 {
		return 0
	}
	if g.probing {
		return g.base
	}
	g.probing = true
	return 0
}

// paused is the time left before calls may be made again.
func (g *keyGate) paused() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(time.Until(g.until), 0)
}

// settle records the outcome of an admitted call: rejected when ElevenLabs
// refused the key. It returns the pause that now applies.
func (g *keyGate) settle(rejected bool) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.probing = false
	if !rejected {
		g.rejected = 0
		return 0
	}
	// Calls that were in flight when the first rejection came back are
	// rejected too; they share its pause rather than lengthen it.
	if d := time.Until(g.until); d > 0 {
		return d
	}
	g.rejected++
	d := min(g.base<<min(g.rejected-1, 10), maxKeyPause)
	g.until = time.Now().Add(d)
	return d
}
