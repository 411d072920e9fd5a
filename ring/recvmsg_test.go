package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"
)

// recvmsgBuf builds a buffer as the kernel writes it for a multishot recvmsg:
// header, name area (nameArea bytes), control area, payload.
func recvmsgBuf(h RecvmsgOut, nameArea, ctrlArea int, name, ctrl, payload []byte) []byte {
	b := make([]byte, 16+nameArea+ctrlArea)
	binary.NativeEndian.PutUint32(b[0:], h.NameLen)
	binary.NativeEndian.PutUint32(b[4:], h.ControlLen)
	binary.NativeEndian.PutUint32(b[8:], h.PayloadLen)
	binary.NativeEndian.PutUint32(b[12:], h.Flags)
	copy(b[16:], name)
	copy(b[16+nameArea:], ctrl)
	return append(b, payload...)
}

func TestParseRecvmsgOut(t *testing.T) {
	name := []byte("0123456789abcdef") // 16 bytes, a sockaddr_in
	tests := []struct {
		name        string
		buf         []byte
		nameLen     uint32
		controlLen  uint32
		wantErr     error
		wantName    []byte
		wantControl []byte
		wantPayload []byte
		nameTrunc   bool
		ctrlTrunc   bool
		payTrunc    bool
	}{
		{
			name:        "plain datagram",
			buf:         recvmsgBuf(RecvmsgOut{NameLen: 16, PayloadLen: 5}, 16, 0, name, nil, []byte("hello")),
			nameLen:     16,
			wantName:    name,
			wantPayload: []byte("hello"),
		},
		{
			name:        "name and control",
			buf:         recvmsgBuf(RecvmsgOut{NameLen: 16, ControlLen: 4, PayloadLen: 2}, 16, 8, name, []byte("ctrl"), []byte("hi")),
			nameLen:     16,
			controlLen:  8,
			wantName:    name,
			wantControl: []byte("ctrl"),
			wantPayload: []byte("hi"),
		},
		{
			name:        "IPv6 source into a sockaddr_in sized area",
			buf:         recvmsgBuf(RecvmsgOut{NameLen: 28, PayloadLen: 1}, 16, 0, name, nil, []byte("x")),
			nameLen:     16,
			wantName:    name,
			wantPayload: []byte("x"),
			nameTrunc:   true,
		},
		{
			name:        "MSG_TRUNC: datagram larger than the buffer",
			buf:         recvmsgBuf(RecvmsgOut{NameLen: 16, PayloadLen: 3, Flags: msgTrunc}, 16, 0, name, nil, []byte("abc")),
			nameLen:     16,
			wantName:    name,
			wantPayload: []byte("abc"),
			payTrunc:    true,
		},
		{
			name:        "payload length beyond the buffer is clamped",
			buf:         recvmsgBuf(RecvmsgOut{NameLen: 16, PayloadLen: 1000}, 16, 0, name, nil, []byte("abc")),
			nameLen:     16,
			wantName:    name,
			wantPayload: []byte("abc"),
			payTrunc:    true,
		},
		{
			name:        "MSG_CTRUNC",
			buf:         recvmsgBuf(RecvmsgOut{ControlLen: 4, Flags: msgCtrunc}, 0, 4, nil, []byte("cccc"), nil),
			controlLen:  4,
			wantName:    []byte{},
			wantControl: []byte("cccc"),
			wantPayload: []byte{},
			ctrlTrunc:   true,
		},
		{
			name:        "control length over the area",
			buf:         recvmsgBuf(RecvmsgOut{ControlLen: 99}, 0, 4, nil, []byte("cccc"), nil),
			controlLen:  4,
			wantName:    []byte{},
			wantControl: []byte("cccc"),
			wantPayload: []byte{},
			ctrlTrunc:   true,
		},
		{name: "shorter than the header", buf: make([]byte, 15), wantErr: ErrRecvmsgTruncated},
		{name: "empty", buf: nil, wantErr: ErrRecvmsgTruncated},
		{
			name:    "name area beyond the buffer",
			buf:     recvmsgBuf(RecvmsgOut{NameLen: 16}, 8, 0, nil, nil, nil),
			nameLen: 16,
			wantErr: ErrRecvmsgTruncated,
		},
		{
			name:       "huge lengths do not overflow",
			buf:        recvmsgBuf(RecvmsgOut{NameLen: 0xffffffff, ControlLen: 0xffffffff}, 0, 0, nil, nil, nil),
			nameLen:    0xffffffff,
			controlLen: 0xffffffff,
			wantErr:    ErrRecvmsgTruncated,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseRecvmsgOut(tt.buf, tt.nameLen, tt.controlLen)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(v.Name, tt.wantName) || !bytes.Equal(v.Control, tt.wantControl) || !bytes.Equal(v.Payload, tt.wantPayload) {
				t.Fatalf("name %q control %q payload %q, want %q %q %q", v.Name, v.Control, v.Payload, tt.wantName, tt.wantControl, tt.wantPayload)
			}
			if v.NameTruncated != tt.nameTrunc || v.ControlTruncated != tt.ctrlTrunc || v.PayloadTruncated != tt.payTrunc {
				t.Fatalf("truncated name/control/payload %v/%v/%v, want %v/%v/%v",
					v.NameTruncated, v.ControlTruncated, v.PayloadTruncated, tt.nameTrunc, tt.ctrlTrunc, tt.payTrunc)
			}
			checkWithin(t, tt.buf, v)
		})
	}
}

// checkWithin fails unless each view, capacity included, lies inside buf at the
// place the layout puts it.
func checkWithin(t *testing.T, buf []byte, v RecvmsgOutView) {
	t.Helper()
	base := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	end := base + uintptr(len(buf))
	prev := base + 16
	for _, s := range []struct {
		what string
		b    []byte
	}{{"name", v.Name}, {"control", v.Control}, {"payload", v.Payload}} {
		if len(s.b) != cap(s.b) {
			t.Fatalf("%s: cap %d > len %d lets an append overwrite the next area", s.what, cap(s.b), len(s.b))
		}
		if len(s.b) == 0 {
			continue
		}
		p := uintptr(unsafe.Pointer(unsafe.SliceData(s.b)))
		if p < prev || p+uintptr(cap(s.b)) > end {
			t.Fatalf("%s [%#x, +%d) outside the buffer [%#x, %#x) or before the previous area", s.what, p, cap(s.b), prev, end)
		}
		prev = p + uintptr(len(s.b))
	}
}

func FuzzParseRecvmsgOut(f *testing.F) {
	f.Add(recvmsgBuf(RecvmsgOut{NameLen: 16, PayloadLen: 5}, 16, 0, make([]byte, 16), nil, []byte("hello")), uint32(16), uint32(0))
	f.Add(recvmsgBuf(RecvmsgOut{NameLen: 28, ControlLen: 20, PayloadLen: 9, Flags: msgTrunc | msgCtrunc}, 16, 24, nil, nil, []byte("p")), uint32(16), uint32(24))
	f.Add([]byte{}, uint32(0), uint32(0))
	f.Add(make([]byte, 16), uint32(0xffffffff), uint32(1))
	f.Fuzz(func(t *testing.T, buf []byte, nameLen, controlLen uint32) {
		v, err := ParseRecvmsgOut(buf, nameLen, controlLen)
		if err != nil {
			if !errors.Is(err, ErrRecvmsgTruncated) {
				t.Fatalf("unexpected error %v", err)
			}
			if uint64(len(buf)) >= 16+uint64(nameLen)+uint64(controlLen) {
				t.Fatalf("rejected a buffer of %d bytes that holds the %d+%d areas", len(buf), nameLen, controlLen)
			}
			return
		}
		checkWithin(t, buf, v)
		if uint32(len(v.Name)) > nameLen || uint32(len(v.Control)) > controlLen {
			t.Fatalf("views longer than their areas: %d > %d or %d > %d", len(v.Name), nameLen, len(v.Control), controlLen)
		}
		if uint32(len(v.Payload)) > v.Header.PayloadLen {
			t.Fatalf("payload %d bytes, header says %d", len(v.Payload), v.Header.PayloadLen)
		}
		if len(v.Payload) > 0 {
			// The payload starts right after both areas.
			off := uintptr(unsafe.Pointer(unsafe.SliceData(v.Payload))) - uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
			if off != 16+uintptr(nameLen)+uintptr(controlLen) {
				t.Fatalf("payload at offset %d, want %d", off, 16+nameLen+controlLen)
			}
		}
	})
}
