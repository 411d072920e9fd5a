//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// cpioWriter writes a "newc" cpio archive, the format the kernel unpacks as
// an initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
type cpioWriter struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIO(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), ino: 1, dirs: map[string]bool{}}
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

func (c *cpioWriter) header(name string, mode, size, rdevMajor, rdevMinor uint32) {
	if c.err != nil {
		return
	}
	c.ino++
	nlink := uint32(1)
	if mode&modeDir != 0 {
		nlink = 2
	}
	_, c.err = fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if c.err == nil {
		_, c.err = c.w.WriteString(name + "\x00")
	}
	c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) pad(n int) {
	if c.err == nil && n%4 != 0 {
		_, c.err = c.w.Write(make([]byte, 4-n%4))
	}
}

// dir adds name and any parent not added yet.
func (c *cpioWriter) dir(name string) {
	name = strings.Trim(name, "/")
	if name == "" || name == "." || c.dirs[name] {
		return
	}
	c.dir(path.Dir(name))
	c.dirs[name] = true
	c.header(name, modeDir|0o755, 0, 0, 0)
}

func (c *cpioWriter) charDev(name string, major, minor uint32) {
	c.dir(path.Dir(name))
	c.header(name, modeChar|0o600, 0, major, minor)
}

func (c *cpioWriter) file(name string, data []byte, perm uint32) {
	c.dir(path.Dir(name))
	c.header(name, modeFile|perm, uint32(len(data)), 0, 0)
	if c.err == nil {
		_, c.err = c.w.Write(data)
	}
	c.pad(len(data))
}

// fileFrom adds the file at src as name.
func (c *cpioWriter) fileFrom(name, src string, perm uint32) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() >= 1<<32 {
		return fmt.Errorf("%s: too large for newc", src)
	}
	c.dir(path.Dir(name))
	c.header(name, modeFile|perm, uint32(st.Size()), 0, 0)
	if c.err == nil {
		var n int64
		n, c.err = io.Copy(c.w, f)
		if c.err == nil && n != st.Size() {
			c.err = fmt.Errorf("%s changed while being read", src)
		}
	}
	c.pad(int(st.Size()))
	return c.err
}

// tree adds the directory src, if it exists, as name.
func (c *cpioWriter) tree(name, src string) error {
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := path.Join(name, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			c.dir(dst)
		case d.Type().IsRegular():
			return c.fileFrom(dst, p, 0o644)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (c *cpioWriter) close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}
