// SPDX-License-Identifier: BSD-3-Clause
// Go's goroutine ping-pong over two pipes (os.Pipe, so the reads and writes
// go through internal/poll and the runtime's netpoller): the peer figure
// for the event-loop ping-pong of bench/loop_bodies.cc. Prints the median
// ns per round trip of 5 runs of 200,000 round trips.
//
//	GOMAXPROCS=1 go run go_pingpong.go   # one thread, like one gopoll::Loop
package main

import (
	"fmt"
	"os"
	"sort"
	"time"
)

func run(rounds int) time.Duration {
	r1, w1, _ := os.Pipe()
	r2, w2, _ := os.Pipe()
	defer r1.Close()
	defer w1.Close()
	defer r2.Close()
	defer w2.Close()
	go func() { // side B: echo
		b := make([]byte, 64)
		for i := 0; i < rounds; i++ {
			n, err := r1.Read(b)
			if err != nil || n != 1 {
				panic("B read")
			}
			if _, err := w2.Write(b[:1]); err != nil {
				panic("B write")
			}
		}
	}()
	b := make([]byte, 64)
	start := time.Now()
	for i := 0; i < rounds; i++ {
		c := []byte{byte(i)}
		if _, err := w1.Write(c); err != nil {
			panic("A write")
		}
		n, err := r2.Read(b)
		if err != nil || n != 1 || b[0] != c[0] {
			panic("A read")
		}
	}
	return time.Since(start)
}

func main() {
	const rounds = 200000
	run(10000) // warm up
	var ns []float64
	for i := 0; i < 5; i++ {
		ns = append(ns, float64(run(rounds).Nanoseconds())/rounds)
	}
	sort.Float64s(ns)
	fmt.Fprintf(os.Stdout, "go goroutines: %.0f ns per round trip\n", ns[2])
}
