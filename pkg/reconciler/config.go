package reconciler

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/scribeq/scribeq/pkg/metrics"
)

// Config configures a Reconciler. Zero values take the documented defaults.
type Config struct {
	// Interval between rounds. Default 1 minute.
	Interval time.Duration

	// A job is stuck once it has been `submitted` for
	// max(MinAge, Factor × (ProcessingPerAudioSecond × D + ProcessingBase)),
	// D being its audio duration in seconds (0 when unknown): the webhook
	// should have come by then.
	//
	// MinAge default 15 minutes.
	MinAge time.Duration
	// Factor is the safety margin over ElevenLabs' own estimate. Default 3.
	Factor float64
	// ProcessingPerAudioSecond and ProcessingBase are ElevenLabs' rough
	// processing time, 0.3·D + 2 s (shared/ELEVENLABS.md §1i). Defaults 0.3
	// and 2 s.
	ProcessingPerAudioSecond float64
	ProcessingBase           time.Duration

	// A stuck job whose transcript ElevenLabs does not know (404) is failed
	// as lost once it has been `submitted` for
	// max(LostAfter, LostFactor × (ProcessingPerAudioSecond × D' + ProcessingBase)),
	// where D' is the duration, or UnknownDuration when it is not known.
	// ElevenLabs answers 404 while a job is still processing as well, so a
	// long recording must not be declared lost before it could have
	// finished; before that, a 404 is left for a later round.
	//
	// LostAfter default 2 hours.
	LostAfter time.Duration
	// LostFactor default 4.
	LostFactor float64
	// UnknownDuration is assumed for the lost threshold when a job's
	// duration is unknown. Default 10 hours, the API's longest file.
	UnknownDuration time.Duration

	// Concurrency is how many GET transcript calls run at once. Default 4.
	Concurrency int
	// BatchSize is the most stuck jobs one round looks at; the next round
	// carries on after the last one, so a long backlog is worked through
	// in turn rather than the oldest jobs being retried forever. Default 500.
	BatchSize int
	// GetTimeout bounds one GET transcript call. Default 2 minutes (a 10 h
	// transcript with character timestamps is tens of MB).
	GetTimeout time.Duration
	// PublishTimeout bounds publishing one event. Default 30 s.
	PublishTimeout time.Duration
	// RecheckAfter is how long a job whose completed or failed event was
	// published is skipped, while the sink catches up. Default 10 minutes.
	RecheckAfter time.Duration
	// UnhealthyRecovered: when a round recovers at least this many
	// transcripts by polling, webhooks are not arriving and an error is
	// logged saying what to check. Default 3.
	UnhealthyRecovered int
	// MissingIDReportEvery is how often a job without transcription_id is
	// logged again (it is counted in every round). Default 1 hour.
	MissingIDReportEvery time.Duration

	// Metrics records each round's outcomes; nil records nothing.
	Metrics *metrics.Reconciler
	// Process names this worker in events. Default "reconciler".
	Process string
	// Logger; default discard.
	Logger *slog.Logger
	// Now is the clock that ages jobs and stamps events. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.MinAge == 0 {
		c.MinAge = 15 * time.Minute
	}
	if c.Factor == 0 {
		c.Factor = 3
	}
	if c.ProcessingPerAudioSecond == 0 {
		c.ProcessingPerAudioSecond = 0.3
	}
	if c.ProcessingBase == 0 {
		c.ProcessingBase = 2 * time.Second
	}
	if c.LostAfter == 0 {
		c.LostAfter = 2 * time.Hour
	}
	if c.LostFactor == 0 {
		c.LostFactor = 4
	}
	if c.UnknownDuration == 0 {
		c.UnknownDuration = 10 * time.Hour
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.GetTimeout == 0 {
		c.GetTimeout = 2 * time.Minute
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 30 * time.Second
	}
	if c.RecheckAfter == 0 {
		c.RecheckAfter = 10 * time.Minute
	}
	if c.UnhealthyRecovered == 0 {
		c.UnhealthyRecovered = 3
	}
	if c.MissingIDReportEvery == 0 {
		c.MissingIDReportEvery = time.Hour
	}
	if c.Process == "" {
		c.Process = "reconciler"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Interval", c.Interval}, {"MinAge", c.MinAge}, {"ProcessingBase", c.ProcessingBase},
		{"LostAfter", c.LostAfter}, {"UnknownDuration", c.UnknownDuration}, {"GetTimeout", c.GetTimeout},
		{"PublishTimeout", c.PublishTimeout}, {"RecheckAfter", c.RecheckAfter},
		{"MissingIDReportEvery", c.MissingIDReportEvery},
	} {
		if d.v < 0 {
			return fmt.Errorf("reconciler: Config.%s %s must not be negative", d.name, d.v)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"Factor", c.Factor}, {"ProcessingPerAudioSecond", c.ProcessingPerAudioSecond}, {"LostFactor", c.LostFactor},
	} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("reconciler: Config.%s %g must be a finite number >= 0", f.name, f.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"Concurrency", c.Concurrency}, {"BatchSize", c.BatchSize}, {"UnhealthyRecovered", c.UnhealthyRecovered},
	} {
		if n.v < 1 {
			return fmt.Errorf("reconciler: Config.%s %d must be at least 1", n.name, n.v)
		}
	}
	if c.LostAfter < c.MinAge {
		return fmt.Errorf("reconciler: Config.LostAfter %s must not be shorter than MinAge %s", c.LostAfter, c.MinAge)
	}
	return nil
}

// estimate is ElevenLabs' rough processing time for secs of audio.
func (c Config) estimate(secs float64) time.Duration {
	return c.ProcessingBase + time.Duration(c.ProcessingPerAudioSecond*max(secs, 0)*float64(time.Second))
}

// StuckAfter is how long a job with secs of audio (0: unknown) may stay
// `submitted` before the reconciler fetches its transcript.
func (c Config) StuckAfter(secs float64) time.Duration {
	c = c.withDefaults()
	return max(c.MinAge, scale(c.Factor, c.estimate(secs)))
}

// LostAfterFor is how long a job with secs of audio (0: unknown) may stay
// `submitted` with its transcript unknown to ElevenLabs before it is failed.
func (c Config) LostAfterFor(secs float64) time.Duration {
	c = c.withDefaults()
	if secs <= 0 {
		secs = c.UnknownDuration.Seconds()
	}
	return max(c.LostAfter, scale(c.LostFactor, c.estimate(secs)))
}

func scale(f float64, d time.Duration) time.Duration { return time.Duration(f * float64(d)) }
