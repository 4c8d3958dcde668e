package streamread

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// SSEEvent is one Server-Sent Event; its slices are valid until the
// reader's next call.
type SSEEvent struct {
	Name, ID, Data []byte
}

// SSEReader reads Server-Sent Events, reusing its buffers. It follows the
// parts of the format the service uses: LF or CRLF line ends, comments,
// the event, data (several lines joined by LF) and id fields; retry and
// unknown fields are skipped.
type SSEReader struct {
	r    *bufio.Reader
	long []byte // a line longer than r's buffer, assembled here
	name []byte
	id   []byte
	data []byte
}

// NewSSEReader reads events from r through a buffer of size bytes.
func NewSSEReader(r io.Reader, size int) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, size)}
}

// Next reads through the blank line that ends the next event with data. A
// stream that ends, even between events, is io.ErrUnexpectedEOF: the
// service's streams never end by themselves.
func (s *SSEReader) Next() (SSEEvent, error) {
	s.name, s.id, s.data = s.name[:0], s.id[:0], s.data[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return SSEEvent{}, err
		}
		if len(line) == 0 {
			// An event without data is dropped, as EventSource does.
			if hasData {
				return SSEEvent{Name: s.name, ID: s.id, Data: s.data}, nil
			}
			s.name, s.id = s.name[:0], s.id[:0]
			continue
		}
		if line[0] == ':' {
			continue // a comment: the server's heartbeat
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if found && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		switch string(field) {
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			hasData = true
		case "event":
			s.name = append(s.name[:0], value...)
		case "id":
			s.id = append(s.id[:0], value...)
		}
	}
}

// readLine returns the next line without its LF or CRLF. The slice is valid
// until the next call.
func (s *SSEReader) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		s.long = append(s.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = s.r.ReadSlice('\n')
			s.long = append(s.long, line...)
		}
		line = s.long
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
