//go:build linux

package ringrelay

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// kernelDrops sums the drops column of /proc/net/udp and /proc/net/udp6 over
// the sockets whose inode is in inodes. It returns 0 where /proc is not
// mounted.
func kernelDrops(inodes map[uint64]bool) uint64 {
	var n uint64
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
			fields := strings.Fields(sc.Text())
			if len(fields) < 13 {
				continue
			}
			ino, err := strconv.ParseUint(fields[9], 10, 64)
			if err != nil || !inodes[ino] {
				continue
			}
			if d, err := strconv.ParseUint(fields[12], 10, 64); err == nil {
				n += d
			}
		}
		f.Close()
	}
	return n
}
