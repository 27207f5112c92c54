package web_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scribeq/scribeq/pkg/event"
	"github.com/scribeq/scribeq/pkg/web"
)

// pages are every page of the console, as a logged-in browser sees them.
var pages = []string{
	"/", "/overview/live", "/jobs", "/jobs?state=failed", "/jobs?batch=calls&metadata=customer%3Dacme&since=7d",
	"/jobs/job-a", "/jobs/job-a?t=5.5", "/jobs/job-b", "/jobs/job-c", "/search", "/search?q=%22refund+policy%22",
	"/dead-letters", "/dead-letters?all=1",
}

func TestWebAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})

	t.Run("EveryPageNeedsCredentials", func(t *testing.T) {
		for _, p := range append(pages, "/jobs/job-a/audio", "/jobs/job-a/export/srt", "/export/txt", "/nope") {
			r := b.do(t, request{path: p})
			require.Equal(t, http.StatusUnauthorized, r.status, p)
			require.NotContains(t, r.body, "support-call", p)
			require.Contains(t, r.header.Get("WWW-Authenticate"), "Basic", p)
		}
		for _, p := range []string{"/jobs/job-b/retry", "/jobs/job-c/cancel", "/dead-letters/1/replay"} {
			r := b.do(t, request{method: http.MethodPost, path: p, form: url.Values{}})
			require.Equal(t, http.StatusUnauthorized, r.status, p)
		}
	})
	t.Run("WrongCredentials", func(t *testing.T) {
		r := b.do(t, request{path: "/", header: http.Header{"Authorization": {"Bearer " + testToken + "x"}}})
		require.Equal(t, http.StatusUnauthorized, r.status)
		req := request{path: "/", header: http.Header{}}
		req.header.Set("Authorization", "Basic b3BzOndyb25n") // ops:wrong
		require.Equal(t, http.StatusUnauthorized, b.do(t, req).status)
		r = b.do(t, request{path: "/", header: http.Header{"Cookie": {"scribeq_session=" + testToken}}})
		require.Equal(t, http.StatusUnauthorized, r.status, "the cookie is not the token itself")
	})
	t.Run("TokenAndBasic", func(t *testing.T) {
		require.Equal(t, http.StatusOK, b.do(t, request{path: "/", auth: "token"}).status)
		require.Equal(t, http.StatusOK, b.do(t, request{path: "/", auth: "basic"}).status)
	})
	t.Run("LoginSetsACookie", func(t *testing.T) {
		r := b.do(t, request{path: "/jobs/job-a"})
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Contains(t, r.body, `name="next" value="/jobs/job-a"`, "the login page comes back to the page asked for")

		r = b.do(t, request{method: http.MethodPost, path: "/login", form: url.Values{"token": {"nope"}, "next": {"/jobs"}}})
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Empty(t, r.header.Values("Set-Cookie"))

		r = b.do(t, request{method: http.MethodPost, path: "/login", form: url.Values{"token": {testToken}, "next": {"//evil.example/x"}}})
		require.Equal(t, http.StatusSeeOther, r.status)
		require.Equal(t, "/", r.header.Get("Location"), "no redirect off the site")
		cookie := r.header.Get("Set-Cookie")
		require.Contains(t, cookie, "HttpOnly")
		require.NotContains(t, cookie, testToken)
		session := strings.SplitN(cookie, ";", 2)[0]
		r = b.do(t, request{path: "/jobs", header: http.Header{"Cookie": {session}}})
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, r.body, "Log out")

		r = b.do(t, request{path: "/login?token=" + url.QueryEscape(testToken) + "&next=/search"})
		require.Equal(t, http.StatusSeeOther, r.status, "a link with the token logs in")
		require.Equal(t, "/search", r.header.Get("Location"))
	})
	t.Run("OpenEndpoints", func(t *testing.T) {
		require.Equal(t, http.StatusOK, b.do(t, request{path: "/healthz"}).status)
		r := b.do(t, request{path: "/static/style.css"})
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, r.header.Get("Content-Type"), "text/css")
		require.Equal(t, http.StatusNotFound, b.do(t, request{path: "/static/nope.js"}).status)
	})
	t.Run("ConfigNeedsAuth", func(t *testing.T) {
		_, err := web.New(web.Config{DB: b.db})
		require.ErrorContains(t, err, "authentication")
		_, err = web.New(web.Config{DB: b.db, Auth: web.Auth{User: "x"}})
		require.ErrorContains(t, err, "password")
		_, err = web.New(web.Config{DB: b.db, Auth: web.Auth{Token: "t"}, Write: true})
		require.ErrorContains(t, err, "Queue")
	})
}

func TestWebNoAuthWhenAskedFor(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{auth: &web.Auth{None: true}})
	r := b.do(t, request{path: "/jobs/job-a"})
	require.Equal(t, http.StatusOK, r.status)
}

func TestWebPages(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	for _, p := range pages {
		r := b.get(t, p)
		require.Equal(t, http.StatusOK, r.status, "%s:\n%s", p, r.body)
		require.Contains(t, r.header.Get("Content-Type"), "text/html", p)
		require.Contains(t, r.header.Get("Content-Security-Policy"), "script-src 'self'", p)
		if p != "/overview/live" {
			require.Contains(t, r.body, `<main id="main"`, p)
			require.Contains(t, r.body, `<nav aria-label="Main">`, p)
		}
	}

	t.Run("Overview", func(t *testing.T) {
		body := b.get(t, "/").body
		require.Contains(t, body, `data-live="/overview/live"`)
		require.Contains(t, body, "<svg class=\"chart\"")
		require.Contains(t, body, "Jobs completed per minute")
		require.Contains(t, body, "Audio hours transcribed per hour")
		require.Contains(t, body, "1 job completed and 1 failed in the last hour", "the seeded jobs finished 30 minutes ago")
		require.Contains(t, body, "Jobs completed per minute, last hour: 1 job completed", "the chart has a text equivalent")
		require.Contains(t, body, `href="/jobs?batch=`+batchID+`"`)
		require.Contains(t, body, ">calls<")
		require.Contains(t, body, `data-pct="66"`, "two of three jobs of the batch are finished")
		require.Contains(t, body, "convert: 422 unsupported audio", "recent failures say why")
		require.Contains(t, body, "1 dead letter waiting")
		require.Contains(t, body, "submitter", "consumer lag is listed")
		require.Contains(t, body, "0.0011 USD", "what job-a cost (10 s at 0.40/h)")
		live := b.get(t, "/overview/live").body
		require.NotContains(t, live, "<html")
		require.Contains(t, live, `data-pct="66"`)
	})
	t.Run("JobsList", func(t *testing.T) {
		body := b.get(t, "/jobs").body
		for _, name := range []string{"support-call.wav", "broken.wav", "waiting.wav"} {
			require.Contains(t, body, name)
		}
		body = b.get(t, "/jobs?state=failed").body
		require.Contains(t, body, "broken.wav")
		require.NotContains(t, body, "support-call.wav")
		body = b.get(t, "/jobs?state=completed&metadata=customer%3Dacme&language=english").body
		require.Contains(t, body, "support-call.wav")
		require.NotContains(t, body, "waiting.wav")
		r := b.get(t, "/jobs?since=yesterdayish")
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Contains(t, r.body, "want a duration back from now")
		require.Equal(t, http.StatusBadRequest, b.get(t, "/jobs?state=lost").status)
	})
	t.Run("JobsPaging", func(t *testing.T) {
		// Keyset pages of one job each: every job once, in name order, and
		// each next link keeps the filter.
		next := "/jobs?batch=calls&sort=%2Bname&limit=1"
		var seen []string
		for range 5 {
			body := b.get(t, next).body
			for _, name := range []string{"broken.wav", "support-call.wav", "waiting.wav"} {
				if strings.Contains(body, ">"+name+"<") {
					seen = append(seen, name)
				}
			}
			m := nextRE.FindStringSubmatch(body)
			if m == nil {
				break
			}
			next = html.UnescapeString(m[1])
			require.Contains(t, next, "batch=calls")
			require.Contains(t, next, "sort=%2Bname")
		}
		require.Equal(t, []string{"broken.wav", "support-call.wav", "waiting.wav"}, seen)
		r := b.get(t, "/jobs?after=garbage")
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, r.body, "out of date")
	})
	t.Run("JobPage", func(t *testing.T) {
		body := b.get(t, "/jobs/job-a?t=5.5").body
		require.Contains(t, body, `<audio id="player"`)
		require.Contains(t, body, `src="/jobs/job-a/audio"`)
		require.Contains(t, body, `data-cue="5.5"`)
		require.Contains(t, body, `<span class="w" data-s="5.5">refund</span>`)
		require.Contains(t, body, `<span class="who">Speaker 1</span>`)
		require.Contains(t, body, `<span class="who">Speaker 2</span>`)
		require.Contains(t, body, `href="?t=3.5"`, "each turn's time is a link")
		require.Contains(t, body, "req-a")
		require.Contains(t, body, "tr-a")
		require.Contains(t, body, "customer")
		require.Contains(t, body, "scribe_v1")
		require.Contains(t, body, "0.0011 USD")
		require.Contains(t, body, `class="timeline"`)
		for _, f := range []string{"srt", "vtt", "txt", "json"} {
			require.Contains(t, body, `href="/jobs/job-a/export/`+f+`"`)
		}
		require.NotContains(t, body, "/retry", "read-only: no operations")

		body = b.get(t, "/jobs/job-b").body
		require.Contains(t, body, "convert: 422 unsupported audio")
		require.Contains(t, body, "No transcript yet")

		r := b.get(t, "/jobs/nope")
		require.Equal(t, http.StatusNotFound, r.status)
		require.Contains(t, r.body, "There is no job nope")
	})
}

func TestWebSearchLinksToTheMoment(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	body := b.get(t, "/search?q=%22refund+policy%22").body
	require.Contains(t, body, `href="/jobs/job-a?t=5.5"`, "the hit cues the player at the first matching word")
	require.Contains(t, body, "<mark>refund</mark> <mark>policy</mark>")
	require.Contains(t, body, "Speaker 2:")
	require.Contains(t, body, "at 0:05")

	body = b.get(t, "/search?q=refund&state=failed").body
	require.Contains(t, body, "No matches", "filters apply to search")
	r := b.get(t, "/search?q=the")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, r.body, "Nothing to search for")
	body = b.get(t, "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").body
	require.NotContains(t, body, "<script>alert", "the query is escaped")
}

func TestWebAudioRanges(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	size := len(b.audio)

	r := b.get(t, "/jobs/job-a/audio")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "audio/wav", r.header.Get("Content-Type"))
	require.Equal(t, "bytes", r.header.Get("Accept-Ranges"))
	require.True(t, r.body == string(b.audio), "the whole object, byte for byte")

	ranges := [][2]int{{0, 0}, {0, 99}, {16383, 16385}, {1000, 70000}, {size - 10, size - 1}, {size / 2, size - 1}}
	for i := range 20 { // chunk boundaries are irregular: try many places
		start := (i * 15485) % size
		ranges = append(ranges, [2]int{start, min(size-1, start+i*997)})
	}
	for _, rg := range ranges {
		req := request{path: "/jobs/job-a/audio", auth: "token", header: http.Header{}}
		req.header.Set("Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1]))
		r := b.do(t, req)
		require.Equal(t, http.StatusPartialContent, r.status, "%v", rg)
		require.Equal(t, fmt.Sprintf("bytes %d-%d/%d", rg[0], rg[1], size), r.header.Get("Content-Range"))
		require.True(t, r.body == string(b.audio[rg[0]:rg[1]+1]), "bytes %v", rg)
	}

	t.Run("OpenEndedAndSuffix", func(t *testing.T) {
		req := request{path: "/jobs/job-a/audio", auth: "token", header: http.Header{"Range": {"bytes=300000-"}}}
		r := b.do(t, req)
		require.Equal(t, http.StatusPartialContent, r.status)
		require.True(t, r.body == string(b.audio[300000:]))
		req.header.Set("Range", "bytes=-500")
		r = b.do(t, req)
		require.Equal(t, http.StatusPartialContent, r.status)
		require.True(t, r.body == string(b.audio[size-500:]))
	})
	t.Run("MultipleRanges", func(t *testing.T) {
		req := request{path: "/jobs/job-a/audio", auth: "token", header: http.Header{"Range": {"bytes=10-19,200000-200009"}}}
		r := b.do(t, req)
		require.Equal(t, http.StatusPartialContent, r.status)
		_, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
		require.NoError(t, err)
		mr := multipart.NewReader(strings.NewReader(r.body), params["boundary"])
		for _, want := range [][]byte{b.audio[10:20], b.audio[200000:200010]} {
			part, err := mr.NextPart()
			require.NoError(t, err)
			got, err := io.ReadAll(part)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}
	})
	t.Run("Unsatisfiable", func(t *testing.T) {
		req := request{path: "/jobs/job-a/audio", auth: "token", header: http.Header{"Range": {fmt.Sprintf("bytes=%d-", size+10)}}}
		require.Equal(t, http.StatusRequestedRangeNotSatisfiable, b.do(t, req).status)
	})
	t.Run("IfRange", func(t *testing.T) {
		etag := r.header.Get("ETag")
		require.Equal(t, `"`+hexSum(b.audio)+`"`, etag)
		req := request{path: "/jobs/job-a/audio", auth: "token", header: http.Header{"Range": {"bytes=0-9"}, "If-Range": {etag}}}
		require.Equal(t, http.StatusPartialContent, b.do(t, req).status)
		req.header.Set("If-Range", `"something-else"`)
		require.Equal(t, http.StatusOK, b.do(t, req).status, "a changed object would be sent whole")
	})
	t.Run("Missing", func(t *testing.T) {
		r := b.get(t, "/jobs/job-c/audio")
		require.Equal(t, http.StatusNotFound, r.status)
		require.Contains(t, r.body, "no longer in the object store")
		require.Equal(t, http.StatusNotFound, b.get(t, "/jobs/nope/audio").status)
	})
	t.Run("NoQueueNoPlayer", func(t *testing.T) {
		nb := setup(t, setupOpts{noQueue: true})
		require.NotContains(t, nb.get(t, "/jobs/job-a").body, "<audio")
		require.Equal(t, http.StatusNotFound, nb.get(t, "/jobs/job-a/audio").status)
	})
}

func TestWebExports(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	r := b.get(t, "/jobs/job-a/export/srt")
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.header.Get("Content-Disposition"), `attachment; filename="support-call.job-a.srt"`)
	require.Contains(t, r.body, "00:00:03,500 -->", "the second speaker's first cue")
	require.Contains(t, b.get(t, "/jobs/job-a/export/vtt").body, "WEBVTT")
	require.Contains(t, b.get(t, "/jobs/job-a/export/txt").body, "refund policy")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(b.get(t, "/jobs/job-a/export/json").body), &doc))
	require.Equal(t, "job-a", doc["job_id"])
	require.Equal(t, http.StatusNotFound, b.get(t, "/jobs/job-b/export/srt").status)
	require.Equal(t, http.StatusNotFound, b.get(t, "/jobs/job-a/export/docx").status)

	r = b.get(t, "/export/txt?batch=calls")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "application/zip", r.header.Get("Content-Type"))
	zr, err := zip.NewReader(bytes.NewReader([]byte(r.body)), int64(len(r.body)))
	require.NoError(t, err)
	require.Len(t, zr.File, 1, "only job-a has a transcript")
	require.Equal(t, "support-call.job-a.txt", zr.File[0].Name)
	body := b.get(t, "/jobs?batch=calls").body
	require.Contains(t, body, `href="/export/srt?batch=calls"`, "the list offers its own transcripts as a zip")
}

func TestWebNoSecretInAnyPage(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{write: true})
	var all strings.Builder
	for _, p := range append(pages, "/login", "/jobs/job-a/export/json", "/nope", "/static/app.js") {
		all.WriteString(b.get(t, p).body)
		all.WriteString(b.do(t, request{path: p}).body) // and as a stranger
	}
	text := all.String()
	for _, secret := range []string{testToken, testPassword, "Secr3t"} {
		require.NotContains(t, text, secret)
	}
}

func TestWebWriteActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("RefusedWhenReadOnly", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{})
		for _, p := range []string{"/jobs/job-b/retry", "/jobs/job-c/cancel", "/dead-letters/1/replay"} {
			r := b.do(t, request{method: http.MethodPost, path: p, auth: "token", form: url.Values{"csrf": {"anything"}}})
			require.Equal(t, http.StatusForbidden, r.status, p)
			require.Contains(t, r.body, "read-only")
		}
		require.NotContains(t, b.get(t, "/dead-letters").body, "<button", "no replay button")
		_, err := b.q.JS.Stream(ctx, event.StreamEvents)
		require.NoError(t, err)
		_, err = lastOn(b, event.TypeRetried.Subject())
		require.Error(t, err, "nothing was published")
	})

	t.Run("NeedTheFormToken", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{write: true})
		r := b.do(t, request{method: http.MethodPost, path: "/jobs/job-b/retry", auth: "token", form: url.Values{}})
		require.Equal(t, http.StatusForbidden, r.status)
		token := csrf(t, b.get(t, "/jobs/job-b").body)
		r = b.do(t, request{method: http.MethodPost, path: "/jobs/job-b/retry", auth: "token", form: url.Values{"csrf": {token}},
			header: http.Header{"Origin": {"https://evil.example"}}})
		require.Equal(t, http.StatusForbidden, r.status, "another site's form is refused")
		for _, h := range []http.Header{
			{"Sec-Fetch-Site": {"cross-site"}},
			{"Sec-Fetch-Site": {"same-site"}},
			{"Origin": {"null"}},
		} {
			r = b.do(t, request{method: http.MethodPost, path: "/jobs/job-b/retry", auth: "token", form: url.Values{"csrf": {token}}, header: h})
			require.Equal(t, http.StatusForbidden, r.status, "%v", h)
		}
		_, err := lastOn(b, event.TypeRetried.Subject())
		require.Error(t, err, "nothing was published")
	})

	t.Run("RetryCancelReplay", func(t *testing.T) {
		t.Parallel()
		b := setup(t, setupOpts{write: true})
		page := b.get(t, "/jobs/job-b").body
		require.Contains(t, page, `action="/jobs/job-b/retry"`)
		token := csrf(t, page)
		post := func(p string) response {
			return b.do(t, request{method: http.MethodPost, path: p, auth: "token", form: url.Values{"csrf": {token}},
				header: http.Header{"Origin": {b.srv.URL}}})
		}

		r := post("/jobs/job-b/retry")
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		require.Equal(t, "/jobs/job-b?done=retried", r.header.Get("Location"))
		ev, err := lastOn(b, event.TypeRetried.Subject())
		require.NoError(t, err)
		require.Equal(t, "job-b", ev.JobID)
		require.Equal(t, "web", ev.Process)

		r = post("/jobs/job-a/retry")
		require.Equal(t, http.StatusConflict, r.status, "a completed job is not retried")
		require.Contains(t, r.body, "only failed or canceled jobs are retried")

		r = post("/jobs/job-c/cancel")
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		ev, err = lastOn(b, event.TypeCanceled.Subject())
		require.NoError(t, err)
		require.Equal(t, "job-c", ev.JobID)

		require.Contains(t, b.get(t, "/dead-letters").body, `action="/dead-letters/1/replay"`)
		r = post("/dead-letters/1/replay")
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		require.Equal(t, "/dead-letters?replayed=1", r.header.Get("Location"))
		m, err := lastMsg(b, "stt.events.queued")
		require.NoError(t, err)
		require.JSONEq(t, `{"v":1,"type":"queued","job_id":"job-dl"}`, string(m))
		ev, err = lastOn(b, event.TypeReplayed.Subject())
		require.NoError(t, err)
		require.Equal(t, int64(1), ev.DeadLetter.ID)
		require.Contains(t, b.get(t, "/dead-letters?replayed=1").body, "was sent back")

		require.Equal(t, http.StatusNotFound, post("/dead-letters/99/replay").status)
	})
}

var nextRE = regexp.MustCompile(`<a href="([^"]+)" rel="next">`)

func lastMsg(b *testBundle, subject string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := b.q.JS.Stream(ctx, event.StreamEvents)
	if err != nil {
		return nil, err
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

func lastOn(b *testBundle, subject string) (*event.Event, error) {
	data, err := lastMsg(b, subject)
	if err != nil {
		return nil, err
	}
	return event.Decode(data)
}
