// Package sockaddr encodes and decodes the kernel's raw socket addresses
// (struct sockaddr_in and sockaddr_in6) for io_uring operations that take or
// return them: connect, accept, sendto and multishot recvmsg.
//
// Decode is a parser of untrusted bytes (the name area of a recvmsg buffer, an
// accept address): it checks every length and never panics; FuzzDecode pins
// that. Encode and Decode do not allocate.
//
// # Ownership
//
// Encode writes into memory the caller owns; that memory is what the kernel
// reads, so the caller keeps it alive and unmoved while an operation that
// references it is in flight. Decode returns values, never views.
//
// # Concurrency
//
// Every function is safe for concurrent use; none keeps state.
package sockaddr
