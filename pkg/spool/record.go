package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// Record is one spooled message: what would have been published, where,
// and under which message id.
type Record struct {
	// Subject the message is published on. Required.
	Subject string
	// MsgID is the Nats-Msg-Id the message keeps when it is replayed, so a
	// replay after an earlier (unacknowledged but stored) publish is dropped
	// by JetStream's duplicate window. Required.
	MsgID string
	// Data is the message body.
	Data []byte
}

// A record on disk is a frame:
//
//	[0:4]  payload length n, uint32 little endian
//	[4:8]  CRC-32C of bytes [0:4] and the payload
//	[8:8+n] payload: version byte, uvarint len + subject, uvarint len + msg id, data
//
// The CRC covers the length too, so a torn or garbled length is caught
// rather than trusted to skip ahead.
const (
	headerLen     = 8
	formatVersion = 1
	// maxPayload bounds the length read back from disk, so a garbled
	// length cannot ask for a huge allocation.
	maxPayload = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encode(rec Record) []byte {
	n := 1 + binary.MaxVarintLen64*2 + len(rec.Subject) + len(rec.MsgID) + len(rec.Data)
	buf := make([]byte, headerLen, headerLen+n)
	buf = append(buf, formatVersion)
	buf = binary.AppendUvarint(buf, uint64(len(rec.Subject)))
	buf = append(buf, rec.Subject...)
	buf = binary.AppendUvarint(buf, uint64(len(rec.MsgID)))
	buf = append(buf, rec.MsgID...)
	buf = append(buf, rec.Data...)
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(buf)-headerLen))
	binary.LittleEndian.PutUint32(buf[4:8], checksum(buf[0:4], buf[headerLen:]))
	return buf
}

func checksum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, castagnoli), castagnoli, payload)
}

var errBadRecord = errors.New("bad record")

func decodePayload(p []byte) (Record, error) {
	if len(p) == 0 || p[0] != formatVersion {
		return Record{}, fmt.Errorf("%w: unknown format", errBadRecord)
	}
	p = p[1:]
	subject, p, err := field(p)
	if err != nil {
		return Record{}, err
	}
	msgID, p, err := field(p)
	if err != nil {
		return Record{}, err
	}
	return Record{Subject: string(subject), MsgID: string(msgID), Data: p}, nil
}

func field(p []byte) (value, rest []byte, err error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return nil, nil, fmt.Errorf("%w: field length", errBadRecord)
	}
	return p[k : k+int(n)], p[k+int(n):], nil
}

// readAt reads the record whose frame starts at off. Only offsets below a
// segment's scanned size are read, so any failure here is an I/O error or
// the disk changing under us, never a torn write.
func readAt(f *os.File, off int64) (Record, int64, error) {
	var h [headerLen]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return Record{}, 0, err
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	if n > maxPayload {
		return Record{}, 0, fmt.Errorf("%w: length %d at offset %d", errBadRecord, n, off)
	}
	p := make([]byte, n)
	if _, err := f.ReadAt(p, off+headerLen); err != nil {
		return Record{}, 0, err
	}
	if checksum(h[0:4], p) != binary.LittleEndian.Uint32(h[4:8]) {
		return Record{}, 0, fmt.Errorf("%w: checksum at offset %d", errBadRecord, off)
	}
	rec, err := decodePayload(p)
	if err != nil {
		return Record{}, 0, fmt.Errorf("record at offset %d: %w", off, err)
	}
	return rec, off + headerLen + int64(n), nil
}

// scan walks the records of a segment from the start and calls fn with each
// record's start and end. It stops at the first frame that is incomplete or
// fails its checksum — a write torn by a crash — and returns the offset
// where the valid records end. Only I/O errors are returned as errors.
func scan(f *os.File, fn func(start, end int64)) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 256<<10)
	var (
		off int64
		h   [headerLen]byte
		p   []byte
	)
	for size-off >= headerLen {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return off, err
		}
		n := int64(binary.LittleEndian.Uint32(h[0:4]))
		if n > maxPayload || n > size-off-headerLen {
			return off, nil
		}
		if int64(cap(p)) < n {
			p = make([]byte, n)
		}
		p = p[:n]
		if _, err := io.ReadFull(r, p); err != nil {
			return off, err
		}
		if checksum(h[0:4], p) != binary.LittleEndian.Uint32(h[4:8]) {
			return off, nil
		}
		if _, err := decodePayload(p); err != nil {
			return off, nil
		}
		end := off + headerLen + n
		fn(off, end)
		off = end
	}
	return off, nil
}
