package web

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/query"
	"github.com/scribeq/scribeq/pkg/queue"
)

// overviewData is everything the overview shows.
type overviewData struct {
	At          time.Time
	States      []stateCount
	Total       int64
	JobsChart   chart
	HoursChart  chart
	Spent       []string // per currency: what completed jobs cost
	Estimated   []string // per currency: plus what queued and submitted jobs will
	Pending     bool     // some jobs are queued or submitted
	Batches     []batchView
	MoreBatches int64
	Lag         []lagView // nil without a Queue
	Failures    []query.JobRow
	DeadLetters int64
}

type stateCount struct {
	State string
	N     int64
}

type batchView struct {
	ID, Name      string
	Total, Done   int64
	Counts        []stateCount // the non-zero ones
	AudioSecs     float64
	Cost          string
	Pct           int64
	ETA           string
	Finished      bool
	LastCompleted *time.Time
}

type lagView struct {
	Name, Stream string
	Pending      uint64 // not yet delivered
	InFlight     int    // delivered, not yet acknowledged
	Redelivered  int
	Err          string
}

// Batches the overview lists: every unfinished one (up to maxBatches) and
// the most recent finished ones.
const (
	maxBatches      = 20
	finishedBatches = 5
	recentFailures  = 8
)

// overviewCache computes the overview at most once per half refresh
// interval, however many browsers poll it: on a large archive the
// aggregates read every job.
type overviewCache struct {
	mu   sync.Mutex
	data *overviewData
}

func (s *Server) overviewData(ctx context.Context) (*overviewData, error) {
	s.overview.mu.Lock()
	defer s.overview.mu.Unlock()
	now := s.cfg.Now()
	if d := s.overview.data; d != nil && now.Sub(d.At) < s.cfg.Refresh/2 && !now.Before(d.At) {
		return d, nil
	}
	d, err := s.computeOverview(ctx, now)
	if err != nil {
		return nil, err
	}
	s.overview.data = d
	return d, nil
}

func (s *Server) computeOverview(ctx context.Context, now time.Time) (*overviewData, error) {
	d := &overviewData{At: now}
	counts, err := s.db.Status(ctx)
	if err != nil {
		return nil, err
	}
	for _, st := range query.States {
		d.States = append(d.States, stateCount{st, counts[st]})
		d.Total += counts[st]
	}

	minutes, err := s.db.Throughput(ctx, now.Add(-59*time.Minute), now.Add(time.Second), time.Minute)
	if err != nil {
		return nil, err
	}
	hoursIv, err := s.db.Throughput(ctx, now.Add(-23*time.Hour), now.Add(time.Second), time.Hour)
	if err != nil {
		return nil, err
	}
	d.JobsChart = jobsChart(minutes)
	d.HoursChart = hoursChart(hoursIv)

	batches, err := s.db.Batches(ctx)
	if err != nil {
		return nil, err
	}
	spent, estimated := map[string]float64{}, map[string]float64{}
	finished := 0
	for _, b := range batches {
		for cu, v := range b.Cost {
			spent[cu] += v
		}
		for cu, v := range b.EstimatedCost {
			estimated[cu] += v
		}
		v := viewBatch(b, now)
		if v.Finished {
			if finished >= finishedBatches {
				d.MoreBatches++
				continue
			}
			finished++
		}
		if len(d.Batches) >= maxBatches {
			d.MoreBatches++
			continue
		}
		d.Batches = append(d.Batches, v)
	}
	d.Pending = counts["queued"]+counts["submitted"] > 0
	for _, cu := range slices.Sorted(maps.Keys(estimated)) {
		d.Spent = append(d.Spent, moneyValue(spent[cu], cu))
		d.Estimated = append(d.Estimated, moneyValue(estimated[cu], cu))
	}

	if d.Failures, _, err = s.db.Jobs(ctx, query.Filter{States: []string{"failed"}}, query.Page{Limit: recentFailures}); err != nil {
		return nil, err
	}
	if d.DeadLetters, err = s.db.DeadLetterCount(ctx); err != nil {
		return nil, err
	}
	if s.cfg.Queue != nil {
		d.Lag = consumerLag(ctx, s.cfg.Queue)
	}
	return d, nil
}

func viewBatch(b query.BatchRow, now time.Time) batchView {
	v := batchView{ID: b.BatchID, Name: b.Name, Total: b.Total, AudioSecs: b.AudioSecs, LastCompleted: b.LastCompleted}
	if v.Name == "" {
		v.Name = b.BatchID
	}
	for _, st := range query.States {
		if n := b.Counts[st]; n > 0 {
			v.Counts = append(v.Counts, stateCount{st, n})
		}
	}
	v.Done = b.Counts["completed"] + b.Counts["failed"] + b.Counts["canceled"]
	v.Pct = pct(v.Done, v.Total)
	v.Finished = v.Done == v.Total
	costs := b.Cost
	if !v.Finished {
		costs = b.EstimatedCost
	}
	for _, cu := range slices.Sorted(maps.Keys(costs)) {
		if v.Cost != "" {
			v.Cost += ", "
		}
		v.Cost += moneyValue(costs[cu], cu)
	}
	if !v.Finished && v.Done > 0 {
		// The batch's own pace so far, from its creation: a stalled batch's
		// estimate grows as it should.
		elapsed := now.Sub(b.CreatedAt)
		if elapsed > 0 {
			left := time.Duration(float64(elapsed) / float64(v.Done) * float64(v.Total-v.Done))
			v.ETA = human(left.Round(time.Second))
		}
	}
	return v
}

// consumerLag reads the durable consumers' state. A consumer that does not
// exist yet (its worker never ran) is reported as such, not as an error
// of the page.
func consumerLag(ctx context.Context, q *queue.Queue) []lagView {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var out []lagView
	for _, c := range []struct{ stream, name string }{
		{event.StreamJobs, queue.ConsumerSubmitter},
		{event.StreamEvents, queue.ConsumerSink},
	} {
		v := lagView{Name: c.name, Stream: c.stream}
		info, err := consumerInfo(ctx, q.JS, c.stream, c.name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			v.Err = "not created yet: has a " + c.name + " ever run?"
		case err != nil:
			v.Err = "unavailable: " + err.Error()
		default:
			v.Pending, v.InFlight, v.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
		}
		out = append(out, v)
	}
	return out
}

func consumerInfo(ctx context.Context, js jetstream.JetStream, stream, name string) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(ctx, stream, name)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.overviewData(r.Context())
	if err != nil {
		s.internal(w, r, "reading the overview", err)
		return
	}
	s.render(w, r, "overview", d)
}

// overviewLive is the part of the overview that the page's script swaps in
// every refresh interval.
func (s *Server) overviewLive(w http.ResponseWriter, r *http.Request) {
	d, err := s.overviewData(r.Context())
	if err != nil {
		s.log.Error("console: overview", "err", err)
		http.Error(w, "the overview could not be read", http.StatusServiceUnavailable)
		return
	}
	s.execute(w, r, http.StatusOK, "overview", "live", d)
}

func jobsChart(iv []query.Interval) chart {
	vals := make([]float64, len(iv))
	tips := make([]string, len(iv))
	var total, failed int64
	for i, x := range iv {
		vals[i] = float64(x.Completed)
		tips[i] = fmt.Sprintf("%s: %d completed, %d failed", x.Start.UTC().Format("15:04"), x.Completed, x.Failed)
		total += x.Completed
		failed += x.Failed
	}
	return newChart("Jobs completed per minute, last hour", vals, tips, "60 min ago", "now",
		fmt.Sprintf("%s %s completed and %s failed in the last hour", thousands(total), plural(total, "job", "jobs"), thousands(failed)), intTick)
}

func hoursChart(iv []query.Interval) chart {
	vals := make([]float64, len(iv))
	tips := make([]string, len(iv))
	var total float64
	for i, x := range iv {
		vals[i] = x.AudioSecs / 3600
		tips[i] = fmt.Sprintf("%s: %s of audio transcribed", x.Start.UTC().Format("Jan 2 15:00"), hours(x.AudioSecs))
		total += x.AudioSecs
	}
	return newChart("Audio hours transcribed per hour, last day", vals, tips, "24 h ago", "now",
		fmt.Sprintf("%s of audio transcribed in the last 24 hours", hours(total)), hourTick)
}
