// Package rtpinterop checks the RTP relay example's parser and traffic
// generator (examples/rtprelay/rtpcheck and rtptest) against pion/rtp, an
// independent implementation: the same packets marshalled by pion must parse
// to the same fields, a fuzzed datagram pion accepts must pass Check with the
// same payload, rtptest's packets must be the bytes pion marshals, and
// BenchmarkParse puts Check beside pion's Unmarshal. The package itself is
// empty; it lives in the bench module so that the library's go.mod does not
// list pion.
package rtpinterop
