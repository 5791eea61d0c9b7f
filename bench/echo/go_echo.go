// SPDX-License-Identifier: BSD-3-Clause
// Go's TCP echo server for the echo-throughput benchmark (bench/echo/run.sh):
// one goroutine per connection reading into a 16 KiB buffer and writing
// back what it read, on the runtime's netpoller. Prints
// "listening on 127.0.0.1:PORT", runs until killed.
//
//	go build go_echo.go && ./go_echo 0
package main

import (
	"fmt"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
