//go:build linux

package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// grpcSizes are the payload sizes of the gRPC scenarios: 0 B to 4 MiB.
var grpcSizes = []int{0, 1, 1000, 64 << 10, 1 << 20, 4 << 20}

// grpcMaxMsg lets a 4 MiB payload and its protobuf framing through (gRPC's
// default receive limit is exactly 4 MiB).
const grpcMaxMsg = 8 << 20

// testService implements grpc.testing.TestService: UnaryCall echoes the
// request payload, StreamingOutputCall sends one message of stream bytes per
// response parameter, StreamingInputCall sums the payload sizes, and
// FullDuplexCall echoes each message.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (testService) UnaryCall(_ context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Payload: req.GetPayload()}, nil
}

func (testService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, s grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for _, rp := range req.GetResponseParameters() {
		body := streamBytes(uint64(rp.GetSize()), int(rp.GetSize()))
		if err := s.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: body}}); err != nil {
			return err
		}
	}
	return nil
}

func (testService) StreamingInputCall(s grpc.ClientStreamingServer[testgrpc.StreamingInputCallRequest, testgrpc.StreamingInputCallResponse]) error {
	var sum int32
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: sum})
		}
		if err != nil {
			return err
		}
		sum += int32(len(req.GetPayload().GetBody()))
	}
}

func (testService) FullDuplexCall(s grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := s.Send(&testgrpc.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

// startGRPCServer serves testService on ln until the test ends, then stops
// it and checks that Serve returned nil (grpc.Server.Stop closes the
// listener and treats net.ErrClosed from Accept as the normal end).
func startGRPCServer(t testing.TB, who string, ln net.Listener) {
	t.Helper()
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(grpcMaxMsg), grpc.MaxSendMsgSize(grpcMaxMsg))
	testgrpc.RegisterTestServiceServer(srv, testService{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("%s: grpc.Server.Serve returned %v after Stop, want nil", who, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: grpc.Server.Serve did not return within 10s of Stop", who)
		}
	})
}

// newGRPCClient connects to addr with grpc.WithContextDialer over dial.
func newGRPCClient(t testing.TB, who, addr string, dial func(context.Context, string, string) (net.Conn, error)) testgrpc.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return dial(ctx, "tcp", a) }),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(grpcMaxMsg), grpc.MaxCallSendMsgSize(grpcMaxMsg)),
	)
	if err != nil {
		t.Fatalf("%s: grpc.NewClient: %v", who, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

// TestGRPC runs unary, server-streaming, client-streaming and bidirectional
// gRPC calls with payloads of 0 B to 4 MiB, netio as the server (net
// client), as the client through grpc.WithContextDialer (net server), and
// on both ends, and compares what each call returned with package net's.
func TestGRPC(t *testing.T) {
	ss := stacks(t)
	var res results
	for _, p := range pairs(ss, true) {
		t.Run(p.String(), func(t *testing.T) {
			res.record(t, p, runGRPC(t, p))
		})
	}
}

func runGRPC(t *testing.T, p pair) []string {
	who := p.netioSide()
	ln := listenTCP(t, p.server)
	startGRPCServer(t, p.server.name+" server", ln)
	c := newGRPCClient(t, who, ln.Addr().String(), dialer(p.client))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var out []string
	sum := func(b []byte) string { h := sha256.Sum256(b); return fmt.Sprintf("%x", h[:8]) }

	for _, n := range grpcSizes {
		body := streamBytes(uint64(n)+1, n)
		resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: body}})
		if err != nil {
			t.Fatalf("%s: UnaryCall with %d bytes: %v", who, n, err)
		}
		if !bytes.Equal(resp.GetPayload().GetBody(), body) {
			t.Fatalf("%s: UnaryCall with %d bytes: echoed payload differs (%d bytes back)", who, n, len(resp.GetPayload().GetBody()))
		}
		out = append(out, fmt.Sprintf("unary %d: %s", n, sum(resp.GetPayload().GetBody())))
	}

	// Server streaming: one message per size.
	var params []*testgrpc.ResponseParameters
	for _, n := range grpcSizes {
		params = append(params, &testgrpc.ResponseParameters{Size: int32(n)})
	}
	so, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatalf("%s: StreamingOutputCall: %v", who, err)
	}
	for i := 0; ; i++ {
		m, err := so.Recv()
		if errors.Is(err, io.EOF) {
			if i != len(grpcSizes) {
				t.Fatalf("%s: StreamingOutputCall: %d messages, want %d", who, i, len(grpcSizes))
			}
			break
		}
		if err != nil {
			t.Fatalf("%s: StreamingOutputCall message %d: %v", who, i, err)
		}
		n := grpcSizes[i]
		if !bytes.Equal(m.GetPayload().GetBody(), streamBytes(uint64(n), n)) {
			t.Fatalf("%s: StreamingOutputCall message %d (%d bytes): payload differs", who, i, n)
		}
		out = append(out, fmt.Sprintf("server-stream %d: %s", n, sum(m.GetPayload().GetBody())))
	}

	// Client streaming: every size up, the sum back.
	si, err := c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatalf("%s: StreamingInputCall: %v", who, err)
	}
	total := 0
	for _, n := range grpcSizes {
		total += n
		if err := si.Send(&testgrpc.StreamingInputCallRequest{Payload: &testgrpc.Payload{Body: streamBytes(uint64(n), n)}}); err != nil {
			t.Fatalf("%s: StreamingInputCall sending %d bytes: %v", who, n, err)
		}
	}
	agg, err := si.CloseAndRecv()
	if err != nil {
		t.Fatalf("%s: StreamingInputCall CloseAndRecv: %v", who, err)
	}
	if int(agg.GetAggregatedPayloadSize()) != total {
		t.Fatalf("%s: StreamingInputCall: server counted %d bytes, sent %d", who, agg.GetAggregatedPayloadSize(), total)
	}
	out = append(out, fmt.Sprintf("client-stream: %d", agg.GetAggregatedPayloadSize()))

	// Bidirectional: each size out and back, sending and receiving at once.
	fd, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatalf("%s: FullDuplexCall: %v", who, err)
	}
	sendErr := make(chan error, 1)
	go func() {
		for _, n := range grpcSizes {
			if err := fd.Send(&testgrpc.StreamingOutputCallRequest{Payload: &testgrpc.Payload{Body: streamBytes(uint64(n)+2, n)}}); err != nil {
				sendErr <- fmt.Errorf("sending %d bytes: %w", n, err)
				return
			}
		}
		sendErr <- fd.CloseSend()
	}()
	for _, n := range grpcSizes {
		m, err := fd.Recv()
		if err != nil {
			t.Fatalf("%s: FullDuplexCall receiving the %d-byte echo: %v", who, n, err)
		}
		if !bytes.Equal(m.GetPayload().GetBody(), streamBytes(uint64(n)+2, n)) {
			t.Fatalf("%s: FullDuplexCall: %d-byte echo differs", who, n)
		}
		out = append(out, fmt.Sprintf("bidi %d: %s", n, sum(m.GetPayload().GetBody())))
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("%s: FullDuplexCall: %v", who, err)
	}
	if _, err := fd.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: FullDuplexCall: after the last echo got %v, want io.EOF", who, err)
	}

	// Many callers at once on the one connection.
	const callers, calls = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for w := range callers {
		wg.Go(func() {
			for i := range calls {
				body := streamBytes(uint64(w*calls+i), 100+w*calls+i)
				resp, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: body}})
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(resp.GetPayload().GetBody(), body) {
					errs <- fmt.Errorf("caller %d call %d: echo differs", w, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("%s: concurrent UnaryCall: %v", who, err)
	}
	out = append(out, fmt.Sprintf("concurrent: %d callers x %d calls", callers, calls))
	return out
}
