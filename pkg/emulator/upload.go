package emulator

import (
	"crypto/sha256"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/scribeq/scribeq/pkg/audio"
)

const (
	// maxFieldBytes caps one text field in memory (the file streams).
	maxFieldBytes = 64 << 10
	// maxParts caps the parts of one form: keyterms come one part per term,
	// so the documented 1000 terms plus every other field fit.
	maxParts = 2000
	// formOverhead is what the body may hold besides the file: fields and
	// boundaries.
	formOverhead = maxParts*256 + 8<<20
)

// form is a convert request's multipart body: text fields in memory, the
// file only as its size, hash and WAV header.
type form struct {
	fields map[string][]string
	files  int // "file" parts seen; more than one is refused
	file   *upload
}

// last returns the last value of a field, as Starlette's form does, and
// whether the field was sent with a non-blank value.
func (f *form) last(name string) (string, bool) {
	v := f.fields[name]
	if len(v) == 0 || v[len(v)-1] == "" {
		return "", false
	}
	return v[len(v)-1], true
}

type upload struct {
	name   string
	size   int64
	sum    [32]byte
	hdr    *audio.WAVHeader
	hdrErr error
}

func (u *upload) source() source { return fileSource(u.sum, u.size, u.hdr, u.hdrErr) }

// readForm reads the whole multipart body, streaming the file part.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (*form, *apiError) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, &apiError{
			status: http.StatusBadRequest, typ: "validation_error", code: "invalid_request",
			message: "Expected a multipart/form-data body.",
		}
	}
	maxFile := s.cfg.Limits.MaxFileBytes
	body := http.MaxBytesReader(w, r.Body, maxFile+formOverhead)
	mr := multipart.NewReader(body, params["boundary"])
	f := &form{fields: map[string][]string{}}
	maxField := max(maxFieldBytes, s.cfg.Limits.MaxMetadataBytes+1)
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return nil, s.bodyError(err)
		}
		if parts >= maxParts {
			return nil, invalid("", "The form has more than "+itoa(maxParts)+" parts.")
		}
		name := p.FormName()
		switch {
		case name == "file":
			f.files++
			if f.files > 1 {
				// Refused once the form is read; the bytes need not be kept.
				if _, err := io.Copy(io.Discard, p); err != nil {
					return nil, s.bodyError(err)
				}
				break
			}
			up, e := s.readFile(p)
			if e != nil {
				return nil, e
			}
			f.file = up
		case name == "":
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, s.bodyError(err)
			}
		default:
			v, err := io.ReadAll(io.LimitReader(p, int64(maxField)+1))
			if err != nil {
				return nil, s.bodyError(err)
			}
			if len(v) > maxField {
				return nil, invalid(name, "The value of '"+name+"' is too long.")
			}
			f.fields[name] = append(f.fields[name], string(v))
		}
		_ = p.Close()
	}
}

// readFile streams the file part through sha256 and a WAV header sniffer,
// holding no more than a copy buffer of it.
func (s *Server) readFile(p io.Reader) (*upload, *apiError) {
	limit := s.cfg.Limits.MaxFileBytes
	h := sha256.New()
	sn := newWAVSniffer()
	n, err := io.Copy(io.MultiWriter(h, sn), io.LimitReader(p, limit+1))
	hdr, hdrErr := sn.finish(err)
	if err != nil {
		return nil, s.bodyError(err)
	}
	if n > limit {
		return nil, tooLarge(limit)
	}
	up := &upload{size: n, hdr: hdr, hdrErr: hdrErr}
	copy(up.sum[:], h.Sum(nil))
	return up, nil
}

func tooLarge(limit int64) *apiError {
	return &apiError{
		status: http.StatusRequestEntityTooLarge, typ: "validation_error", code: "file_too_large",
		message: "The file is larger than the maximum of " + formatBytes(limit) + ".", param: "file",
	}
}

// bodyError classifies a failure to read the request body.
func (s *Server) bodyError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(s.cfg.Limits.MaxFileBytes)
	}
	return &apiError{
		status: http.StatusBadRequest, typ: "validation_error", code: "invalid_request",
		message: "The multipart body could not be read: " + err.Error(),
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return itoa(int(n>>30)) + " GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(int(n>>20)) + " MiB"
	}
	return itoa(int(n)) + " bytes"
}

// wavSniffer is an io.Writer that parses a WAV header from what is written
// to it, on the fly, and swallows everything after the header. It never
// fails a write, so it can sit in an io.MultiWriter beside the hash.
type wavSniffer struct {
	pw   *io.PipeWriter
	done bool
	res  chan sniffed
}

type sniffed struct {
	hdr *audio.WAVHeader
	err error
}

var errSniffed = errors.New("header read")

func newWAVSniffer() *wavSniffer {
	pr, pw := io.Pipe()
	s := &wavSniffer{pw: pw, res: make(chan sniffed, 1)}
	go func() {
		hdr, err := audio.ReadWAVHeader(pr)
		// Later writes fail at once instead of waiting for a reader.
		pr.CloseWithError(errSniffed)
		s.res <- sniffed{hdr, err}
	}()
	return s
}

func (s *wavSniffer) Write(p []byte) (int, error) {
	if !s.done {
		if _, err := s.pw.Write(p); err != nil {
			s.done = true
		}
	}
	return len(p), nil
}

// finish ends the input (with readErr, or EOF when nil) and returns what
// ReadWAVHeader made of it.
func (s *wavSniffer) finish(readErr error) (*audio.WAVHeader, error) {
	_ = s.pw.CloseWithError(readErr)
	r := <-s.res
	return r.hdr, r.err
}
