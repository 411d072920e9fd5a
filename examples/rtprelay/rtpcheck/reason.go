package rtpcheck

import (
	"encoding/json"
	"errors"
	"strconv"
)

// Reason says why a datagram was not forwarded. The zero value, OK, means it
// was accepted. Parse and Check return the reasons up to BadRTCPType; the
// relay-level reasons after them are assigned by relays so that every drop is
// counted in the same table.
//
// A non-OK Reason is also an error: converting it to the error interface does
// not allocate, and errors.As recovers it.
type Reason uint8

// Drop reasons.
const (
	// OK means the datagram is a valid RTP or RTCP packet.
	OK Reason = iota
	// TooShort means the datagram is shorter than the 12-byte RTP header or
	// the 8-byte RTCP header, or an RTCP compound packet ends in a partial
	// header.
	TooShort
	// BadVersion means the version field is not 2.
	BadVersion
	// BadCSRC means the CSRC list (4×CC bytes) does not fit the datagram.
	BadCSRC
	// BadExtension means the header extension, or its declared length, does not fit.
	BadExtension
	// BadPadding means the P bit is set and the padding count is zero or larger
	// than what follows the header; or an RTCP packet other than the last one
	// of a compound packet has its P bit set.
	BadPadding
	// BadRTCPLength means an RTCP length field runs past the datagram, or is too
	// small for the packet's report count.
	BadRTCPLength
	// BadRTCPType means the first packet of an RTCP compound packet is neither SR
	// nor RR, or a later packet's type is outside the RTCP range 192..223.
	BadRTCPType

	// Truncated is assigned by relays: the datagram did not fit the receive
	// buffer (MSG_TRUNC).
	Truncated
	// WrongSource is assigned by latching relays: the datagram came from an
	// address other than the one the leg latched to.
	WrongSource
	// Unlatched is assigned by latching relays: a reverse-direction datagram
	// arrived before the forward peer's address was learned.
	Unlatched
	// SendFailed is assigned by relays: the send of a forwarded copy failed.
	SendFailed

	// NumReasons is the number of Reason values, OK included.
	NumReasons
)

var reasonNames = [NumReasons]string{
	OK:            "OK",
	TooShort:      "TooShort",
	BadVersion:    "BadVersion",
	BadCSRC:       "BadCSRC",
	BadExtension:  "BadExtension",
	BadPadding:    "BadPadding",
	BadRTCPLength: "BadRTCPLength",
	BadRTCPType:   "BadRTCPType",
	Truncated:     "Truncated",
	WrongSource:   "WrongSource",
	Unlatched:     "Unlatched",
	SendFailed:    "SendFailed",
}

// String returns the reason's name, such as "BadPadding".
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Error implements error; it returns "rtpcheck: " and the reason's name.
func (r Reason) Error() string { return "rtpcheck: " + r.String() }

// Err returns nil for OK and r otherwise, as an error that does not allocate.
func (r Reason) Err() error {
	if r == OK {
		return nil
	}
	return r
}

// Drops counts dropped datagrams by Reason. The OK slot is unused.
type Drops [NumReasons]uint64

// Total returns the sum over all reasons.
func (d *Drops) Total() uint64 {
	var n uint64
	for _, v := range d[1:] {
		n += v
	}
	return n
}

// MarshalJSON encodes the nonzero counts as an object keyed by reason name.
func (d Drops) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for r, v := range d {
		if r == int(OK) || v == 0 {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, Reason(r).String())
		b = append(b, ':')
		b = strconv.AppendUint(b, v, 10)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes the object MarshalJSON writes; unknown names are an error.
func (d *Drops) UnmarshalJSON(b []byte) error {
	var m map[string]uint64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*d = Drops{}
outer:
	for k, v := range m {
		for r := Reason(1); r < NumReasons; r++ {
			if reasonNames[r] == k {
				d[r] = v
				continue outer
			}
		}
		return errors.New("rtpcheck: unknown drop reason " + strconv.Quote(k))
	}
	return nil
}

// String returns the nonzero counts as "reason=count" pairs separated by
// spaces, or "none".
func (d Drops) String() string {
	if d.Total() == 0 {
		return "none"
	}
	return string(d.AppendText(nil))
}

// AppendText appends "reason=count" pairs for the nonzero counts, separated by
// spaces, to b.
func (d *Drops) AppendText(b []byte) []byte {
	first := true
	for r, v := range d {
		if r == int(OK) || v == 0 {
			continue
		}
		if !first {
			b = append(b, ' ')
		}
		first = false
		b = append(b, reasonNames[r]...)
		b = append(b, '=')
		b = strconv.AppendUint(b, v, 10)
	}
	return b
}
