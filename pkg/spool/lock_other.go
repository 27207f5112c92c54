//go:build !unix

package spool

import "os"

// lockDir only creates the lock file where flock is unavailable: run one
// process per spool directory there.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
