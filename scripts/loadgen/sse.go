package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The SSE client is a raw TCP connection, one HTTP/1.1 request written by
// hand, net/http's response parser (for the status, the headers and the
// chunked body) and a minimal event reader: one goroutine and two small
// buffers per connection, no allocation per event. Its CPU is taken from
// the same two cores the server runs on, so it is kept as lean as a
// browser's EventSource is not.

// openSSE connects s as an SSE stream and waits for its ready event. It
// returns the loop that reads the rest of the stream until it ends.
func openSSE(ctx context.Context, tg *target, s *stream, onNotification func(*stream, []byte)) (func() error, error) {
	conn, err := tg.dial(ctx, s.index)
	if err != nil {
		return nil, err
	}
	s.closer = conn
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	req, err := http.NewRequest(http.MethodGet, tg.streamURL("/sse", s), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sse: write request: %w", err)
	}
	br := bufio.NewReaderSize(conn, 2048)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sse: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		conn.Close()
		return nil, fmt.Errorf("sse: %s%s: %s", resp.Status, statusHint(resp.StatusCode), bytes.TrimSpace(body))
	}
	events := newSSEReader(resp.Body, 2048)
	for {
		ev, err := events.next()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("sse: waiting for ready: %w", err)
		}
		if string(ev.name) == "ready" { // always the first event
			break
		}
	}
	// From here the stream lives until the run closes it.
	_ = conn.SetDeadline(time.Time{})

	return func() error {
		for {
			ev, err := events.next()
			if err != nil {
				return err
			}
			switch string(ev.name) {
			case "":
				onNotification(s, ev.data)
			case "error", "reconnect":
				// The server ends the stream after these; say why.
				return fmt.Errorf("sse: server sent %s: %s", ev.name, ev.data)
			}
		}
	}, nil
}

// sseEvent is one event; its slices are valid until the reader's next call.
type sseEvent struct {
	name, id, data []byte
}

// sseReader reads Server-Sent Events, reusing its buffers. It follows the
// parts of the format this server uses: LF or CRLF line ends, comments,
// the event, data (several lines joined by LF) and id fields; retry and
// unknown fields are skipped.
type sseReader struct {
	r    *bufio.Reader
	long []byte // a line longer than r's buffer, assembled here
	name []byte
	id   []byte
	data []byte
}

func newSSEReader(r io.Reader, size int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, size)}
}

// next reads through the blank line that ends the next event with data.
func (s *sseReader) next() (sseEvent, error) {
	s.name, s.id, s.data = s.name[:0], s.id[:0], s.data[:0]
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // a stream ending at all is unexpected
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			// An event without data is dropped, as EventSource does.
			if hasData {
				return sseEvent{name: s.name, id: s.id, data: s.data}, nil
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
func (s *sseReader) readLine() ([]byte, error) {
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
