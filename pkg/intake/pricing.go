package intake

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/scribeq/scribeq/pkg/audio"
	"github.com/scribeq/scribeq/pkg/event"
)

// Limits are ElevenLabs' size and duration limits, checked before upload so
// an item the API would refuse is never sent. They change with plans and
// docs (ELEVENLABS.md §1j), hence configurable. Zero means the default; a
// negative value means no limit.
type Limits struct {
	// MaxBytes of one upload. Default 3 GB (3e9 bytes). CLI: --max-file-size.
	MaxBytes int64
	// MaxDuration of one file. Default 10 h. CLI: --max-duration.
	MaxDuration time.Duration
	// MaxDurationMultichannel of one file sent with multichannel. Default
	// 1 h. CLI: --max-duration-multichannel.
	MaxDurationMultichannel time.Duration
	// MaxChannels a multichannel job may have. Default 5 (the API's limit).
	MaxChannels int
}

// Flag names the limits' messages point to; the CLI must offer them.
const (
	FlagMaxFileSize             = "--max-file-size"
	FlagMaxDuration             = "--max-duration"
	FlagMaxDurationMultichannel = "--max-duration-multichannel"
)

// DefaultLimits are ElevenLabs' published limits.
var DefaultLimits = Limits{
	MaxBytes:                3_000_000_000,
	MaxDuration:             10 * time.Hour,
	MaxDurationMultichannel: time.Hour,
	MaxChannels:             5,
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxDuration == 0 {
		l.MaxDuration = DefaultLimits.MaxDuration
	}
	if l.MaxDurationMultichannel == 0 {
		l.MaxDurationMultichannel = DefaultLimits.MaxDurationMultichannel
	}
	if l.MaxChannels == 0 {
		l.MaxChannels = DefaultLimits.MaxChannels
	}
	return l
}

func (l Limits) validate() error { return nil } // every value has a meaning

// check returns why an item breaks a limit, or "".
func (l Limits) check(size int64, in audio.Info, o event.Options) string {
	if l.MaxBytes > 0 && size > l.MaxBytes {
		return fmt.Sprintf("%s is over the %s upload limit (%s)", humanBytes(size), humanBytes(l.MaxBytes), FlagMaxFileSize)
	}
	d := time.Duration(in.Duration * float64(time.Second))
	if o.MultiChannel {
		if l.MaxChannels > 0 && in.Channels > l.MaxChannels {
			return fmt.Sprintf("%d channels: multichannel transcription accepts at most %d", in.Channels, l.MaxChannels)
		}
		if l.MaxDurationMultichannel > 0 && d > l.MaxDurationMultichannel {
			return fmt.Sprintf("%s long is over the %s limit for multichannel audio (%s)",
				humanDuration(d), humanDuration(l.MaxDurationMultichannel), FlagMaxDurationMultichannel)
		}
		return ""
	}
	if l.MaxDuration > 0 && d > l.MaxDuration {
		return fmt.Sprintf("%s long is over the %s duration limit (%s)", humanDuration(d), humanDuration(l.MaxDuration), FlagMaxDuration)
	}
	return ""
}

// Pricing is what an audio hour costs, for the estimate before sending and
// for Job.Pricing so the database can state each job's cost. Surcharges are
// fractions added to 1 (0.20 is +20%). Zero means the default; a negative
// surcharge means none.
type Pricing struct {
	// PerHour is the plan's API price of one audio hour. Default 0.40 (the
	// Starter plan, Aug 2025; larger plans pay less, so the default errs
	// high). Must be > 0.
	PerHour float64
	// Currency of PerHour. Default "USD".
	Currency string
	// Keyterms surcharge when a job has keyterms. Default 0.20. With more
	// than 100 keyterms a job is billed at least 20 s.
	Keyterms float64
	// EntityDetection surcharge when a job asks for entities. Default 0.30.
	EntityDetection float64
	// Multichannel jobs are billed once per channel at the full duration:
	// that factor needs no configuration (see Multiplier).
}

// DefaultPricing is used for every zero field.
var DefaultPricing = Pricing{PerHour: 0.40, Currency: "USD", Keyterms: 0.20, EntityDetection: 0.30}

func (p Pricing) withDefaults() Pricing {
	if p.PerHour == 0 {
		p.PerHour = DefaultPricing.PerHour
	}
	if p.Currency == "" {
		p.Currency = DefaultPricing.Currency
	}
	if p.Keyterms == 0 {
		p.Keyterms = DefaultPricing.Keyterms
	}
	if p.EntityDetection == 0 {
		p.EntityDetection = DefaultPricing.EntityDetection
	}
	return p
}

func (p Pricing) validate() error {
	if p.PerHour < 0 || math.IsNaN(p.PerHour) || math.IsInf(p.PerHour, 0) {
		return fmt.Errorf("Pricing.PerHour %v: must be a price > 0", p.PerHour)
	}
	if math.IsNaN(p.Keyterms) || math.IsNaN(p.EntityDetection) {
		return errors.New("Pricing: a surcharge is NaN")
	}
	return nil
}

func surcharge(f float64) float64 { return max(f, 0) }

// Multiplier is what one audio hour of a job with options o costs relative
// to PerHour: 1 plus every surcharge the options incur, times the channel
// count when the job is multichannel (each channel is billed at the full
// duration; channels ≤ 0 means unknown and counts as 1).
func (p Pricing) Multiplier(o event.Options, channels int) float64 {
	m := 1.0
	if len(o.Keyterms) > 0 {
		m += surcharge(p.Keyterms)
	}
	if o.EntityDetection != "" {
		m += surcharge(p.EntityDetection)
	}
	if o.MultiChannel && channels > 1 {
		m *= float64(channels)
	}
	return m
}

// Cost estimates one job: seconds of audio with options o. Unknown
// duration (0) costs 0 here; callers count such items separately.
func (p Pricing) Cost(seconds float64, o event.Options, channels int) float64 {
	if seconds <= 0 {
		return 0
	}
	if len(o.Keyterms) > 100 {
		seconds = max(seconds, 20) // minimum billable duration with many keyterms
	}
	return seconds / 3600 * p.PerHour * p.Multiplier(o, channels)
}

// job returns the Pricing stored on a job.
func (p Pricing) job(o event.Options, channels int) *event.Pricing {
	return &event.Pricing{PerHour: p.PerHour, Multiplier: p.Multiplier(o, channels), Currency: p.Currency}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0 && m == 0 && s == 0:
		return fmt.Sprintf("%d h", h)
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	case m > 0 && s == 0:
		return fmt.Sprintf("%d min", m)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%d s", s)
}
