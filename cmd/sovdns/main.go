// Command sovdns is the sovdns DNS server and its zone-editing tools.
package main

import (
	"context"
	"os"

	"github.com/sovdns/sovdns/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
