//go:build linux

package netio

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReadFromFile: a header written with Write, then a file sent with
// io.Copy, then part of it through an io.LimitedReader, arrive in order.
// (io.Copy(c, f) itself reaches ReadFrom with os's fileWithoutWriteTo and is
// copied through Write; the LimitedReader is spliced, file -> pipe ->
// socket. TestReadFromFileSplices checks which path ran.)
func TestReadFromFile(t *testing.T) {
	needRing(t)
	data := make([]byte, 300<<10+123)
	for i := range data {
		data[i] = byte(i * 13)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(io.ReaderFrom); !ok {
		t.Fatal("net.Conn is not an io.ReaderFrom")
	}
	header := []byte("HEADER\r\n")
	if _, err := c.Write(header); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(c, f)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("io.Copy = %d, %v; want %d", n, err, len(data))
	}
	// A LimitedReader over the file: only N more bytes (the file is at EOF,
	// so rewind first).
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	n, err = io.Copy(c, io.LimitReader(f, 1000))
	if err != nil || n != 1000 {
		t.Fatalf("limited io.Copy = %d, %v", n, err)
	}
	c.Close()
	b := <-got
	want := append(append(append([]byte{}, header...), data...), data[:1000]...)
	if !bytes.Equal(b, want) {
		t.Fatalf("received %d bytes, want %d (header, file, 1000 bytes of file)", len(b), len(want))
	}
}
