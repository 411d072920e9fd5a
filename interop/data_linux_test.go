//go:build linux

package interop

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newStream is a deterministic pseudo-random byte stream: AES-CTR keyed by
// seed. It runs at several GB/s in assembly, so that generating and checking
// a GiB costs little next to moving it, even under -race.
func newStream(seed uint64) cipher.Stream {
	var key [16]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	blk, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err)
	}
	return cipher.NewCTR(blk, make([]byte, aes.BlockSize))
}

// fill writes the stream's next len(p) bytes into p.
func fill(s cipher.Stream, p []byte) {
	clear(p)
	s.XORKeyStream(p, p)
}

// streamBytes returns the first n bytes of stream seed.
func streamBytes(seed uint64, n int) []byte {
	p := make([]byte, n)
	fill(newStream(seed), p)
	return p
}

// prngReader reads n bytes of stream seed, then io.EOF.
type prngReader struct {
	s    cipher.Stream
	left int64
}

func newPRNGReader(seed uint64, n int64) *prngReader {
	return &prngReader{s: newStream(seed), left: n}
}

func (r *prngReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	fill(r.s, p)
	r.left -= int64(len(p))
	return len(p), nil
}

// verifier is an io.Writer that checks what it is given against stream
// seed, byte for byte, and fails at the first difference with its offset.
type verifier struct {
	s       cipher.Stream
	n       int64 // bytes checked so far
	scratch []byte
}

func newVerifier(seed uint64) *verifier {
	return &verifier{s: newStream(seed), scratch: make([]byte, 64<<10)}
}

func (v *verifier) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		k := min(len(p), len(v.scratch))
		want := v.scratch[:k]
		fill(v.s, want)
		if !bytes.Equal(p[:k], want) {
			i := 0
			for p[i] == want[i] {
				i++
			}
			return done + i, fmt.Errorf("stream differs at byte %d: got %#02x, want %#02x", v.n+int64(i), p[i], want[i])
		}
		v.n += int64(k)
		done += k
		p = p[k:]
	}
	return done, nil
}

// MiB formats a byte count in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

var addrRE = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):\d+`)

// errShape describes err as what a caller can observe beside the addresses:
// the chain of wrapped types with their operation names and errnos, the
// sentinels it matches, Timeout(), and its text with every address replaced
// by ADDR. Two stacks agree on an error when their shapes are equal.
func errShape(err error) string {
	if err == nil {
		return "<nil>"
	}
	var chain []string
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch x := e.(type) {
		case *net.OpError:
			chain = append(chain, fmt.Sprintf("*net.OpError{Op:%s Net:%s Source:%t Addr:%t}", x.Op, x.Net, x.Source != nil, x.Addr != nil))
		case *os.SyscallError:
			chain = append(chain, "*os.SyscallError{"+x.Syscall+"}")
		case syscall.Errno:
			chain = append(chain, "Errno("+unix.ErrnoName(x)+")")
		default:
			switch e {
			case io.EOF:
				chain = append(chain, "io.EOF")
			case net.ErrClosed:
				chain = append(chain, "net.ErrClosed")
			case os.ErrDeadlineExceeded:
				chain = append(chain, "os.ErrDeadlineExceeded")
			default:
				chain = append(chain, fmt.Sprintf("%T", e))
			}
		}
	}
	var is []string
	for _, s := range []struct {
		name string
		err  error
	}{{"io.EOF", io.EOF}, {"net.ErrClosed", net.ErrClosed}, {"os.ErrDeadlineExceeded", os.ErrDeadlineExceeded}, {"ECONNREFUSED", syscall.ECONNREFUSED}, {"ECONNRESET", syscall.ECONNRESET}, {"EPIPE", syscall.EPIPE}} {
		if errors.Is(err, s.err) {
			is = append(is, s.name)
		}
	}
	timeout := false
	var ne net.Error
	if errors.As(err, &ne) {
		timeout = ne.Timeout()
	}
	return fmt.Sprintf("%s; is [%s]; timeout=%t; %q", strings.Join(chain, " > "), strings.Join(is, " "), timeout, addrRE.ReplaceAllString(err.Error(), "ADDR"))
}

// testCert is a self-signed ECDSA certificate for 127.0.0.1 and localhost,
// made once per process.
var testCert = sync.OnceValues(func() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ringwire interop"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
})

// tlsConfigs returns a server config with the test certificate and the given
// ALPN protocols, and a client config that trusts it.
func tlsConfigs(t testing.TB, protos ...string) (server, client *tls.Config) {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatalf("test certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	server = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, NextProtos: protos, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return server, client
}
